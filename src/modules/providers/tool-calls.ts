/**
 * Tool calls as backends send them: ids for backends that give none (Ollama), and the assembly
 * of streamed OpenAI-style `delta.tool_calls` fragments into whole calls.
 */
import { randomBytes } from 'node:crypto';
import type { ToolCall } from '../../contracts/generation';
import { isRecord, unparseable } from './upstream-body';

/** An id in OpenAI's style (`call_` + 24 characters). */
export function newToolCallId(): string {
  return `call_${randomBytes(18).toString('base64url').replace(/[-_]/g, 'x')}`;
}

/**
 * The whole calls of an answer's `message` (OpenAI-style `message.tool_calls`, or Ollama's, whose
 * arguments are an object and whose ids may be missing); none when it has none.
 */
export function messageToolCalls(message: unknown): ToolCall[] {
  const calls = isRecord(message) ? message.tool_calls : undefined;
  if (calls === undefined || calls === null) return [];
  if (!Array.isArray(calls)) throw unparseable();
  return calls.map((call: unknown) => {
    if (!isRecord(call) || !isRecord(call.function) || typeof call.function.name !== 'string') throw unparseable();
    const args = call.function.arguments;
    return {
      id: typeof call.id === 'string' && call.id !== '' ? call.id : newToolCallId(),
      name: call.function.name,
      arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}),
    };
  });
}

/**
 * Joins `delta.tool_calls` fragments `{index, id?, type?, function: {name?, arguments?}}` by
 * index: the id and name arrive once (the first fragment of a call, as OpenAI and vLLM send
 * them), the arguments in pieces that are concatenated in order.
 */
export class ToolCallAssembler {
  private readonly calls = new Map<number, { id: string; name: string; arguments: string }>();
  /** Fragments received (for the stream's output bounds and usage estimates). */
  fragments = 0;

  add(deltas: unknown): void {
    if (!Array.isArray(deltas)) throw unparseable();
    for (const delta of deltas as unknown[]) {
      if (!isRecord(delta)) throw unparseable();
      const index = typeof delta.index === 'number' && Number.isInteger(delta.index) ? delta.index : this.calls.size;
      const fn = delta.function === undefined || delta.function === null ? {} : delta.function;
      if (!isRecord(fn)) throw unparseable();
      const call = this.calls.get(index) ?? { id: '', name: '', arguments: '' };
      if (typeof delta.id === 'string' && delta.id !== '') call.id = delta.id;
      if (typeof fn.name === 'string' && fn.name !== '') call.name = fn.name;
      if (typeof fn.arguments === 'string') call.arguments += fn.arguments;
      else if (fn.arguments !== undefined && fn.arguments !== null) throw unparseable();
      this.calls.set(index, call);
      this.fragments += 1;
    }
  }

  /** The calls by index; a call that never got a name is garbage. */
  result(): ToolCall[] {
    return [...this.calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, call]) => {
        if (call.name === '') throw unparseable();
        return { id: call.id || newToolCallId(), name: call.name, arguments: call.arguments || '{}' };
      });
  }
}
