/**
 * One generation on one context sequence of the embedded engine: a clean sequence (no prefix
 * reuse, so results do not depend on what ran before), llama.cpp's sampler with the request's
 * settings, stop strings applied to the text (stop-string-filter.ts), an optional grammar
 * (structured outputs, forced tool calls), and node-llama-cpp's function calling for tools in
 * `auto` mode (tool-mode.ts). Usage is the engine's own token meter.
 */
import { randomInt } from 'node:crypto';
import type { LlamaGrammar, Token } from 'node-llama-cpp';
import { BackendResponseError } from '../../../contracts/backend-errors';
import type {
  FinishReason,
  GenerationParams,
  GenerationResult,
  TokenUsage,
  ToolCall,
} from '../../../contracts/generation';
import { newToolCallId } from '../tool-calls';
import type { ChatRenderer } from './chat-rendering';
import type { NodeLlamaCpp } from './load-node-llama-cpp';
import type { Slot } from './sequence-pool';
import { StopStringFilter } from './stop-string-filter';
import type { ToolMode } from './tool-mode';

const SEED_SPACE = 0x1_0000_0000;

/** Sampler seed for llama.cpp (uint32). null → a fresh random seed per request. */
function resolveSeed(seed: number | null): number {
  if (seed === null || !Number.isFinite(seed)) return randomInt(0, SEED_SPACE - 1);
  return ((Math.floor(seed) % SEED_SPACE) + SEED_SPACE) % SEED_SPACE;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** What the engine runs: the prompt's tokens (without the BOS the engine adds), their count with it, a grammar, tools. */
export interface SequenceRun {
  tokens: Token[];
  promptTokens: number;
  grammar?: LlamaGrammar;
  tools: ToolMode | null;
}

export async function runOnSequence(
  engine: { nlc: NodeLlamaCpp; chat: ChatRenderer },
  slot: Slot,
  { tokens, promptTokens, grammar, tools }: SequenceRun,
  params: GenerationParams,
  signal: AbortSignal,
  ctl: AbortController,
  onDelta: ((text: string) => void) | null,
): Promise<GenerationResult> {
  const { sequence, completion } = slot;
  // A clean sequence per request: no prefix reuse from the previous request, so results do
  // not depend on what ran before, and all prompt tokens are really evaluated.
  await sequence.clearHistory();
  if (ctl.signal.aborted) throw ctl.signal.reason;

  const filter = new StopStringFilter(params.stop);
  const meterBefore = sequence.tokenMeter.getState();
  let engineError: unknown = null;
  let stopReason: string | null = null;
  let calls: ToolCall[] = [];
  const sampling = {
    maxTokens: params.maxNewTokens,
    temperature: Math.max(0, params.temperature), // 0 = greedy
    topK: Math.max(0, Math.floor(params.topK)), // 0 = whole vocabulary
    topP: params.topP > 0 && params.topP < 1 ? params.topP : 1, // 1 = disabled
    minP: 0,
    seed: resolveSeed(params.seed),
    repeatPenalty: false as const, // node-llama-cpp enables one by default; other backends do not
    // We stop the engine ourselves (stop strings, client abort) and want it to return
    // normally after the current token rather than throw.
    signal: ctl.signal,
    stopOnAbortSignal: true,
    onTextChunk: (chunk: string) => {
      const delta = filter.push(chunk);
      if (delta !== '' && onDelta) onDelta(delta);
      if (filter.stopped && !ctl.signal.aborted) ctl.abort(new Error('stop string'));
    },
  };
  try {
    if (tools?.kind === 'auto' && engine.chat.kind === 'gguf') {
      slot.chat ??= new engine.nlc.LlamaChat({
        contextSequence: sequence,
        chatWrapper: engine.chat.wrapper,
        autoDisposeSequence: false,
      });
      const res = await slot.chat.generateResponse(tools.history, {
        ...sampling,
        functions: tools.functions,
        documentFunctionParams: true,
        ...(tools.parallel ? {} : { maxParallelFunctionCalls: 1 }),
      });
      stopReason = res.metadata.stopReason;
      calls = (res.functionCalls ?? []).map((fc) => ({
        id: newToolCallId(),
        name: fc.functionName,
        arguments: JSON.stringify(fc.params ?? {}),
      }));
    } else {
      const res = await completion.generateCompletionWithMeta(tokens, {
        ...sampling,
        grammar,
        // The prompt + max tokens were checked to fit: never shift/truncate the context silently.
        disableContextShift: true,
        contextShiftSize: 1,
      });
      stopReason = res.metadata.stopReason;
    }
  } catch (err) {
    engineError = err;
  }

  if (signal.aborted) throw signal.reason;
  if (engineError !== null) {
    if (ctl.signal.aborted && ctl.signal.reason === engineError) throw engineError; // closed
    throw new BackendResponseError(`embedded engine failed: ${errorMessage(engineError).slice(0, 200)}`, null, {
      cause: engineError,
    });
  }

  let finishReason: FinishReason;
  if (filter.stopped) finishReason = 'stop';
  else if (stopReason === 'maxTokens') finishReason = 'length';
  else if (stopReason === 'abort')
    throw ctl.signal.reason; // closed while generating
  else finishReason = 'stop'; // eogToken, stop triggers
  if (!filter.stopped) {
    const tail = filter.flush();
    if (tail !== '' && onDelta) onDelta(tail);
  }

  const used = sequence.tokenMeter.diff(meterBefore);
  const usage: TokenUsage = {
    promptTokens,
    // The meter counts every sampled token (one logits row each) as output.
    completionTokens: used.usedOutputTokens,
  };
  if (tools?.kind === 'forced') {
    // The arguments the grammar let the model write are the call.
    const call = { id: newToolCallId(), name: tools.name, arguments: filter.output };
    return { output: '', finishReason, usage, toolCalls: [call] };
  }
  if (calls.length > 0) return { output: filter.output, finishReason: 'tool_calls', usage, toolCalls: calls };
  return { output: filter.output, finishReason, usage };
}
