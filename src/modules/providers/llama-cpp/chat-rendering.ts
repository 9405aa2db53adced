/**
 * Chat requests on the embedded engine: the conversation rendered to a prompt, then run exactly
 * like a completion (same sampler, stop strings, streaming, abort, usage; prompt tokens = the
 * rendered prompt's tokens including BOS).
 * - When the GGUF has a chat template (`tokenizer.chat_template`), it is rendered with
 *   node-llama-cpp's JinjaTemplateChatWrapper, followed by the template's generation prompt
 *   (`add_generation_prompt`). Message contents are tokenized as plain text (a "<s>" or
 *   "<|im_start|>" typed by a user never becomes a control token); the template's own text is
 *   tokenized with special tokens. Behaviour of that wrapper a caller can see: consecutive
 *   messages of the same role are joined into one (contents separated by "\n\n"); a template
 *   that rejects system messages gets them as a user message
 *   ("### System message\n\n{content}\n\n----" + "\n\n" + the next user message); the template
 *   decides the BOS token (`{{ bos_token }}`), and exactly one BOS starts the prompt when the
 *   model adds one (tokenizer.ggml.add_bos_token). The turn ends at the model's end-of-generation
 *   token (llama.cpp's EOG set, e.g. <|eot_id|>, <|im_end|>), as with a completion. A template
 *   that fails to load falls back to the plain template below (`info.chatTemplate` says which
 *   one is used, `info.chatTemplateError` why); one that fails on a given conversation (e.g.
 *   "roles must alternate") rejects that request with BackendResponseError (status 400).
 * - Otherwise the plain template (PLAIN_CHAT_TEMPLATE), each message as
 *   "### System:\n{content}\n\n", "### User:\n{content}\n\n" or "### Assistant:\n{content}\n\n",
 *   then "### Assistant:\n". E.g. [system "Be brief.", user "Hi"] renders
 *   "### System:\nBe brief.\n\n### User:\nHi\n\n### Assistant:\n". A model without a template is
 *   usually a base model that would go on to write the next turn, so "\n\n### User:" and
 *   "\n### User:" are added to the request's stop strings (the answer ends before them, finish
 *   "stop").
 * With either template, a conversation that ends with an assistant message is continued: that
 * message is left open (no end of turn, no new assistant header) and the output extends it.
 * Tool calls and results in the conversation are rendered by a template that does function
 * calling (tool-mode.ts); any other template refuses them (400 naming `messages`).
 */
import type { ChatHistoryItem, ChatModelFunctions, ChatModelResponse, JinjaTemplateChatWrapper } from 'node-llama-cpp';
import { UnsupportedRequestError } from '../../../contracts/backend-errors';
import type { ChatMessage, ToolsParams } from '../../../contracts/generation';
import type { GgufHeader } from '../../gguf/gguf-format';
import type { NodeLlamaCpp } from './load-node-llama-cpp';

/** The template used when the GGUF has no (loadable) chat template; see the file comment. */
export const PLAIN_CHAT_TEMPLATE = {
  headers: { system: '### System:\n', user: '### User:\n', assistant: '### Assistant:\n' },
  /** After each message's content, except an assistant message that ends the conversation. */
  separator: '\n\n',
  /** Added to the request's stop strings. */
  stop: ['\n\n### User:', '\n### User:'],
} as const;

/** Renders messages with PLAIN_CHAT_TEMPLATE (without the BOS token the engine adds). */
export function renderPlainChat(messages: readonly ChatMessage[]): string {
  const { headers, separator } = PLAIN_CHAT_TEMPLATE;
  const last = messages[messages.length - 1];
  const continued = last?.role === 'assistant';
  let text = '';
  messages.forEach((m, i) => {
    if (m.role === 'tool' || m.toolCalls?.length) throw toolMessagesUnsupported();
    text += headers[m.role] + m.content;
    if (!(continued && i === messages.length - 1)) text += separator;
  });
  return continued ? text : text + headers.assistant;
}

function toolMessagesUnsupported(): UnsupportedRequestError {
  return new UnsupportedRequestError(
    "this model's chat template has no function calling, so conversations with tool calls or tool results are not supported",
    'messages',
  );
}

/** A tool result as the template gets it: JSON when it is JSON, else the text. */
function toolResult(content: string): unknown {
  try {
    return JSON.parse(content) as unknown;
  } catch {
    return content;
  }
}

/**
 * Our messages as node-llama-cpp chat history, ending with the (possibly empty) model turn. Tool
 * calls become `functionCall` items of their model turn, with the result of the tool message
 * that answers them (`withTools`: the template does function calling; else they are refused).
 */
export function toChatHistory(messages: readonly ChatMessage[], withTools = false): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  const pending = new Map<string, { type: 'functionCall'; name: string; params: unknown; result: unknown }>();
  let previous: ChatMessage['role'] | null = null;
  for (const m of messages) {
    if (m.role === 'tool' || m.toolCalls?.length) {
      if (!withTools) throw toolMessagesUnsupported();
    }
    if (m.role === 'tool') {
      const call = pending.get(m.toolCallId ?? '');
      if (!call) {
        throw new UnsupportedRequestError(`a tool message answers no earlier call ("${m.toolCallId}")`, 'messages');
      }
      call.result = toolResult(m.content);
      pending.delete(m.toolCallId!);
    } else if (m.role === 'system') history.push({ type: 'system', text: m.content });
    else if (m.role === 'user') history.push({ type: 'user', text: m.content });
    else {
      // After tool results the model's turn goes on (node-llama-cpp renders the results inside it).
      const last = history[history.length - 1];
      const continues = previous === 'tool' && last?.type === 'model';
      const response: ChatModelResponse['response'] = continues ? last.response : [];
      if (m.content !== '' || !m.toolCalls?.length) response.push(m.content);
      for (const call of m.toolCalls ?? []) {
        const item = {
          type: 'functionCall' as const,
          name: call.name,
          params: toolResult(call.arguments),
          result: '' as unknown,
        };
        pending.set(call.id, item);
        response.push(item as ChatModelResponse['response'][number]);
      }
      if (!continues) history.push({ type: 'model', response });
    }
    previous = m.role;
  }
  // The model's turn to answer: a new one, or the one its tool calls and their results are in.
  if (history[history.length - 1]?.type !== 'model') history.push({ type: 'model', response: [] });
  return history;
}

/** The request's tools as node-llama-cpp functions (documented to the model; no handlers: we only collect calls). */
export function chatModelFunctions(tools: ToolsParams['tools']): ChatModelFunctions {
  return Object.fromEntries(
    tools.map((tool) => [
      tool.name,
      {
        ...(tool.description ? { description: tool.description } : {}),
        params: (tool.parameters ?? { type: 'object', properties: {} }) as never,
      },
    ]),
  );
}

/** How chat requests are rendered for this model. */
export type ChatRenderer = { kind: 'gguf'; wrapper: JinjaTemplateChatWrapper } | { kind: 'plain' };

/** The GGUF's chat template as a renderer, or the plain template (with the reason, if any). */
export function loadChatTemplate(
  nlc: NodeLlamaCpp,
  header: GgufHeader,
): { renderer: ChatRenderer; error: string | null } {
  const template = header.metadata.get('tokenizer.chat_template');
  if (typeof template !== 'string' || template.trim() === '') return { renderer: { kind: 'plain' }, error: null };
  try {
    // reasoning: null leaves the template's own thinking default alone, as vLLM and Ollama do.
    const wrapper = new nlc.JinjaTemplateChatWrapper({ template, reasoning: null });
    return { renderer: { kind: 'gguf', wrapper }, error: null };
  } catch (err) {
    return { renderer: { kind: 'plain' }, error: (err instanceof Error ? err.message : String(err)).slice(0, 300) };
  }
}

/** Whether a renderer does function calling (the GGUF's template, where node-llama-cpp found its call syntax). */
export function functionCalling(chat: ChatRenderer): boolean {
  return chat.kind === 'gguf' && chat.wrapper.usingJinjaFunctionCallTemplate;
}
