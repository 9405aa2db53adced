/**
 * Tools on the embedded engine. Where the GGUF's chat template supports function calling
 * (node-llama-cpp recognises its call syntax: `info.functionCalling`), they go through
 * node-llama-cpp's function calling:
 * - `auto`: LlamaChat.generateResponse with the tools as functions (documented in the prompt by
 *   the template, their parameters constrained by a grammar once the model starts a call);
 *   the calls it makes are the answer's tool calls (finish "tool_calls"; `parallel_tool_calls:
 *   false` allows one), its text the content;
 * - a named function (or `required` with one tool): the call is forced: the rendered prompt is
 *   followed by the template's call prefix and the function's name, and the arguments are
 *   generated under a grammar built from its parameters schema (finish "stop", or "length" when
 *   max_tokens cuts them). `required` with several tools is a 400 naming `tool_choice`, since
 *   node-llama-cpp cannot force "some call";
 * - earlier calls and their results in the conversation are rendered by the template (a tool
 *   result answers the call with its tool_call_id; a JSON result is passed as JSON).
 * Without function calling in the template (the plain template, or a Jinja template without
 * tools), a request offering tools (unless tool_choice is "none") is a 400 naming `tools`, and a
 * conversation with tool calls or results a 400 naming `messages`: a clear refusal instead of a
 * model that silently ignores the tools. Tools and a response format together are a 400 naming
 * `response_format` (node-llama-cpp cannot constrain both).
 */
import type { ChatHistoryItem, ChatModelFunctions } from 'node-llama-cpp';
import { UnsupportedRequestError } from '../../../contracts/backend-errors';
import { chatMessagesOf, type GenerationParams } from '../../../contracts/generation';
import { chatModelFunctions, toChatHistory } from './chat-rendering';

/** How a request with tools runs; null: as a plain completion. */
export type ToolMode =
  | { kind: 'auto'; history: ChatHistoryItem[]; functions: ChatModelFunctions; parallel: boolean }
  | { kind: 'forced'; name: string; schema: Record<string, unknown> };

/**
 * How the request's tools run, or null (no tools, or tool_choice none); throws for what cannot
 * run. `functionCalling`: the model's chat template does function calling.
 */
export function toolMode(params: GenerationParams, functionCalling: boolean): ToolMode | null {
  const offered = params.tools;
  if (!offered || offered.choice === 'none') return null;
  if (!functionCalling) {
    throw new UnsupportedRequestError("this model's chat template has no function calling", 'tools');
  }
  if (params.responseFormat) {
    throw new UnsupportedRequestError(
      'the embedded engine cannot combine tools with a response format',
      'response_format',
    );
  }
  const { choice, tools } = offered;
  const forced =
    typeof choice === 'object' ? choice.name : choice === 'required' && tools.length === 1 ? tools[0].name : null;
  if (choice === 'required' && forced === null) {
    throw new UnsupportedRequestError(
      'the embedded engine can force a call only to one named function: name it in tool_choice',
      'tool_choice',
    );
  }
  if (forced !== null) {
    const tool = tools.find((t) => t.name === forced)!;
    return { kind: 'forced', name: forced, schema: tool.parameters ?? { type: 'object', properties: {} } };
  }
  const history = toChatHistory(chatMessagesOf(params) ?? [], true);
  return { kind: 'auto', history, functions: chatModelFunctions(tools), parallel: offered.parallel };
}
