/**
 * A request as the engine runs it: the prompt's tokens (a completion's text, or a chat rendered
 * by the model's template: chat-rendering.ts; a forced tool call starts the model's turn with the
 * call syntax and the function's name) and the stop strings the plain template adds.
 */
import type { Token } from 'node-llama-cpp';
import { BackendResponseError, UnsupportedRequestError } from '../../../contracts/backend-errors';
import { chatMessagesOf, type GenerationParams } from '../../../contracts/generation';
import {
  chatModelFunctions,
  functionCalling,
  PLAIN_CHAT_TEMPLATE,
  renderPlainChat,
  toChatHistory,
} from './chat-rendering';
import type { LoadedEngine } from './engine-loader';
import type { ToolMode } from './tool-mode';

export interface EngineInput {
  /** Without the BOS token LlamaCompletion prepends. */
  tokens: Token[];
  /** Stop strings added to the request's own (the plain chat template's). */
  extraStops: readonly string[];
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function engineInput(engine: LoadedEngine, params: GenerationParams, tools: ToolMode | null): EngineInput {
  const { model, chat } = engine;
  const trim = engine.bosToken !== null ? 'trimLeadingSpace' : undefined;
  const messages = chatMessagesOf(params);
  if (!messages) {
    // Tokenized exactly as LlamaCompletion would for a string input.
    return { tokens: model.tokenize(params.prompt, false, trim), extraStops: [] };
  }
  if (chat.kind === 'plain') {
    return { tokens: model.tokenize(renderPlainChat(messages), false, trim), extraStops: PLAIN_CHAT_TEMPLATE.stop };
  }
  let tokens: Token[];
  try {
    const { wrapper } = chat;
    const offered = params.tools && params.tools.choice !== 'none' ? chatModelFunctions(params.tools.tools) : undefined;
    const { contextText } = wrapper.generateContextState({
      chatHistory: toChatHistory(messages, functionCalling(chat)),
      availableFunctions: offered,
      documentFunctionParams: offered ? true : undefined,
    });
    // A forced call: the model's turn starts with the template's call syntax and the name.
    const call = wrapper.settings.functions.call;
    const text =
      tools?.kind === 'forced'
        ? engine.nlc.LlamaText([contextText, call.prefix, tools.name, call.paramsPrefix])
        : contextText;
    tokens = text.tokenize(model.tokenizer, trim);
  } catch (err) {
    if (err instanceof UnsupportedRequestError) throw err;
    throw new BackendResponseError(`the chat template failed: ${errorMessage(err).slice(0, 200)}`, 400, {
      cause: err,
    });
  }
  // The template's own BOS ({{ bos_token }}) is the one LlamaCompletion adds.
  if (engine.bosToken !== null && tokens[0] === engine.bosToken) tokens = tokens.slice(1);
  return { tokens, extraStops: [] };
}
