/**
 * The shapes generation, usage and the cache share: a request's parameters after validation,
 * what a generation produces, and how a stream ends. A leaf module: it imports nothing of the
 * app, so every capability can depend on it without depending on each other.
 */
/**
 * One chat message; content parts were already flattened to one string by the HTTP layer.
 * An assistant message may carry the tool calls it made (its content is then often ''); a
 * `tool` message is the result of the call named by `toolCallId`.
 */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  toolCalls?: ToolCall[];
  toolCallId?: string;
}

/** A JSON schema as the client sent it (validated only as a JSON object). */
export type JsonSchema = Record<string, unknown>;

/** A function the model may call (OpenAI `tools[].function`). */
export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON schema of the arguments object; absent means "no arguments". */
  parameters?: JsonSchema;
  strict?: boolean;
}

/** OpenAI `tool_choice`: never, model's choice, at least one call, or this function. */
export type ToolChoice = 'none' | 'auto' | 'required' | { name: string };

/** A call the model made: `arguments` is the JSON text the model wrote (OpenAI keeps it a string). */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** OpenAI `response_format` beyond free text (`text` is no format): any JSON object, or JSON valid against a schema. */
export type ResponseFormat =
  { type: 'json_object' } | { type: 'json_schema'; name: string; schema: JsonSchema; strict: boolean };

/** Tools offered to a chat request (only present when at least one tool was given). */
export interface ToolsParams {
  tools: ToolDefinition[];
  choice: ToolChoice;
  /** Whether the model may make several calls in one turn (OpenAI's default: true). */
  parallel: boolean;
}

/**
 * Request parameters after validation and defaults: providers never see `undefined`.
 *
 * A request is a chat request when `messages` is present and non-empty: providers then send the
 * messages to the backend's chat endpoint (or render them with the model's chat template) and
 * ignore `prompt` (callers may set it to '' or to a rendering for logs). Everything else (the
 * sampling fields, streaming, abort, usage, finish reason, errors) has the same contract for
 * both kinds of request.
 */
export interface GenerationParams {
  prompt: string;
  /** Chat messages, in order; see above. */
  messages?: ChatMessage[];
  maxNewTokens: number;
  temperature: number;
  topP: number;
  /** 0 means disabled (the API's -1 is normalised to 0 before this point). */
  topK: number;
  /** Possibly empty; at most 4 strings. */
  stop: string[];
  seed: number | null;
  /** Chat requests only: the tools the model may call. */
  tools?: ToolsParams;
  /** Absent means free text. */
  responseFormat?: ResponseFormat;
}

/** The chat messages of a chat request, or null for a plain completion. */
export function chatMessagesOf(params: GenerationParams): ChatMessage[] | null {
  return params.messages && params.messages.length > 0 ? params.messages : null;
}

/** The text a request's prompt tokens come from: the prompt, or every message's content and tool calls. */
export function promptText(params: GenerationParams): string {
  if (!params.messages?.length) return params.prompt;
  return params.messages
    .map((message) => [message.content, ...(message.toolCalls ?? []).map((call) => call.arguments)].join('\n'))
    .join('\n');
}

/** `tool_calls`: the turn ended with calls the client must run (only with `tools`). */
export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  /** Of the prompt tokens, those the backend served from its prefix cache (when it reports them). */
  cachedPromptTokens?: number;
}

export interface GenerationResult {
  output: string;
  finishReason: FinishReason;
  usage: TokenUsage;
  /** The calls the model made, in order (absent or empty: none). */
  toolCalls?: ToolCall[];
  /** An embedding request's answer: one vector per input, in order (`output` is then ''). */
  embeddings?: number[][];
}

/**
 * Streams yield text deltas and end with exactly one `done` chunk. Tool calls arrive whole with
 * the `done` chunk: backends stream their arguments, but a call is only usable once complete,
 * and the API re-sends it in OpenAI's fragment format (see openai-format.ts).
 */
export type StreamChunk =
  | { type: 'delta'; text: string }
  | { type: 'done'; finishReason: FinishReason; usage: TokenUsage; toolCalls?: ToolCall[] };

/**
 * An embedding request after validation: strings, or token-id arrays (backends that take only
 * text refuse those), and the vector size asked for (null: the model's own).
 */
export interface EmbeddingParams {
  input: string[] | number[][];
  dimensions: number | null;
}

/** One vector per input, in input order; usage has prompt tokens only. */
export interface EmbeddingResult {
  vectors: number[][];
  usage: TokenUsage;
}

/** The reason used when the client went away. */
export class ClientDisconnected extends Error {
  override readonly name = 'ClientDisconnected';
}

/** The reason a call's deadline signal carries, to tell a timeout from a client disconnect. */
export class DeadlineExceeded extends Error {
  override readonly name = 'DeadlineExceeded';
}
