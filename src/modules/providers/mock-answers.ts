/**
 * The mock provider's answers (mock.provider.ts): deterministic, computed without a backend.
 *
 * Output is a pure function of (prompt, temperature, top_p, top_k, seed, max_new_tokens, stop):
 * 8 to 24 words picked from a small vocabulary by a PRNG seeded with a hash of the prompt and
 * the sampling parameters, each preceded by a space (" lorem ipsum …"). `mockCompletion()`
 * computes it without a provider.
 *
 * A "token" is a whitespace-separated word:
 * - the output is cut after `maxNewTokens` words → finish "length";
 * - the first occurrence of any stop string in that text cuts the output just before it →
 *   finish "stop" (a stop string beyond the length cut is never reached, as with real engines);
 * - prompt tokens = words in the whole prompt; completion tokens = words in the output.
 * Streaming yields one delta per word, with its leading whitespace, then the done chunk.
 *
 * Special prompts: tags at the very start of the prompt, combinable, e.g.
 * "[mock:slow:20][mock:fail-after:3] hello":
 * - `[mock:error]`          rejects with BackendResponseError("mock backend error", 500).
 * - `[mock:unreachable]`    rejects with BackendUnreachableError.
 * - `[mock:busy]`           rejects with BackendBusyError.
 * - `[mock:slow:<ms>]`      waits <ms> before each word (generate() waits <ms> × words).
 * - `[mock:hang]`           never answers; only the abort signal ends the call.
 * - `[mock:fail-after:<n>]` streams n words, then throws BackendResponseError; generate()
 *                           rejects with it (after the same slow-mode wait).
 * - `[mock:echo]`           the output is the rest of the prompt (leading whitespace removed)
 *                           instead of generated words; length and stop rules still apply.
 * An unknown tag ends tag parsing and is treated as ordinary prompt text.
 *
 * Chat requests (`params.messages`) follow the same rules with these differences:
 * - the words are picked by a PRNG seeded with a hash of the messages (role and content, in
 *   order) and the sampling parameters; `prompt` is ignored;
 * - the tags are read from the start of the LAST user message (none when there is no user
 *   message), and `[mock:echo]` echoes the rest of that message;
 * - prompt tokens = words in all message contents (roles not counted).
 * `mockChatCompletion()` computes a chat answer without a provider (`mockCompletion()` does too).
 *
 * Tools (`params.tools`, tool_choice not `none`): the mock calls a tool when tool_choice is
 * `required` or names a function, or, with `auto`, when the conversation does not end with a
 * tool result (so a round trip is: call → the client sends the result → a text answer). It
 * calls the named function, else the first tool; with `[mock:parallel]` (and parallel calls
 * allowed) every tool, in order. A call's id is `call_` + 24 characters derived from the
 * conversation, its arguments a value of the tool's `parameters` schema (schema-sample.ts)
 * picked by a PRNG seeded like the words; the answer then has no text, finish "tool_calls" and
 * completion tokens = the words of the arguments.
 * Response formats (no call made): `json_object` gives `{"answer": "<the words>"}`,
 * `json_schema` a value of the schema; one compact JSON text (a single "word").
 *
 * Embeddings: per input, a unit-length vector of `dimensions` (else MOCK_EMBEDDING_DIMENSIONS)
 * numbers picked by a PRNG seeded with a hash of the input (text or token ids): equal inputs
 * get equal vectors. Prompt tokens = the words of the texts (token arrays: their length). A
 * text starting with a failure tag (`[mock:error]` …) fails the call like a generation.

 */
import { createHash } from 'node:crypto';
import { mulberry32 } from '../../contracts/prng';
import { chatMessagesOf } from '../../contracts/generation';
import type {
  ChatMessage,
  EmbeddingParams,
  EmbeddingResult,
  FinishReason,
  GenerationParams,
  GenerationResult,
  ToolCall,
  ToolDefinition,
} from '../../contracts/generation';
import { sampleForSchema } from './schema-sample';

export const MOCK_EMBEDDING_DIMENSIONS = 16;

// prettier-ignore
const VOCABULARY = [
  'lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur', 'adipiscing', 'elit', 'sed', 'do',
  'eiusmod', 'tempor', 'incididunt', 'ut', 'labore', 'et', 'dolore', 'magna', 'aliqua', 'enim',
  'ad', 'minim', 'veniam', 'quis', 'nostrud', 'café', 'naïve', 'über', 'llama', 'token', 'gateway',
  'model',
];

const MIN_WORDS = 8;
const MAX_WORDS = 24;

export interface MockDirectives {
  error: boolean;
  unreachable: boolean;
  busy: boolean;
  hang: boolean;
  echo: boolean;
  parallel: boolean;
  slowMs: number;
  failAfter: number | null;
  /** The prompt after the tags. */
  rest: string;
}

const TAG = /^\s*\[mock:([a-z-]+)(?::([^\]]*))?\]/;

export function parseDirectives(prompt: string): MockDirectives {
  const d: MockDirectives = {
    error: false,
    unreachable: false,
    busy: false,
    hang: false,
    echo: false,
    parallel: false,
    slowMs: 0,
    failAfter: null,
    rest: prompt,
  };
  for (;;) {
    const match = TAG.exec(d.rest);
    if (!match) break;
    const [tag, name, arg] = match;
    const num = Number(arg);
    const validNum = arg !== undefined && /^\d+$/.test(arg) && Number.isSafeInteger(num);
    if (name === 'error' && arg === undefined) d.error = true;
    else if (name === 'unreachable' && arg === undefined) d.unreachable = true;
    else if (name === 'busy' && arg === undefined) d.busy = true;
    else if (name === 'hang' && arg === undefined) d.hang = true;
    else if (name === 'echo' && arg === undefined) d.echo = true;
    else if (name === 'parallel' && arg === undefined) d.parallel = true;
    else if (name === 'slow' && validNum) d.slowMs = num;
    else if (name === 'fail-after' && validNum) d.failAfter = num;
    else break;
    d.rest = d.rest.slice(tag.length);
  }
  return d;
}

function countWords(text: string): number {
  return text.match(/\S+/g)?.length ?? 0;
}

/** Splits text into words with their leading whitespace (and any trailing whitespace). */
export function pieces(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

/** The text the tags are read from: the prompt, or the last user message of a chat. */
export function directiveSource(params: GenerationParams): string {
  const messages = chatMessagesOf(params);
  if (!messages) return params.prompt;
  for (let i = messages.length - 1; i >= 0; i -= 1) {
    if (messages[i].role === 'user') return messages[i].content;
  }
  return '';
}

function promptWords(params: GenerationParams): number {
  const messages = chatMessagesOf(params);
  if (!messages) return countWords(params.prompt);
  return messages.reduce((sum, message) => sum + countWords(message.content), 0);
}

/** A PRNG seeded by the input and the sampling parameters (`salt` separates independent uses). */
function seededRandom(params: GenerationParams, salt = ''): () => number {
  const messages = chatMessagesOf(params);
  const key = JSON.stringify([
    messages
      ? { chat: messages.map(({ role, content, toolCalls }) => [role, content, toolCalls ?? []]) }
      : params.prompt,
    params.temperature,
    params.topP,
    params.topK,
    params.seed,
    ...(salt ? [salt, params.tools ?? null, params.responseFormat ?? null] : []),
  ]);
  return mulberry32(createHash('sha256').update(key).digest().readUInt32BE(0));
}

function generatedText(params: GenerationParams): string {
  const random = seededRandom(params);
  const count = MIN_WORDS + Math.floor(random() * (MAX_WORDS - MIN_WORDS + 1));
  let text = '';
  for (let i = 0; i < count; i += 1) {
    text += ` ${VOCABULARY[Math.floor(random() * VOCABULARY.length)]}`;
  }
  return text;
}

/** The tools the mock calls for this request (none: it answers with text); see the file comment. */
function toolsToCall(params: GenerationParams, directives: MockDirectives): ToolDefinition[] {
  const offered = params.tools;
  if (!offered || offered.choice === 'none') return [];
  const { choice, tools } = offered;
  if (typeof choice === 'object') return tools.filter((tool) => tool.name === choice.name);
  const messages = chatMessagesOf(params) ?? [];
  if (choice === 'auto' && messages[messages.length - 1]?.role === 'tool') return [];
  return directives.parallel && offered.parallel ? tools : tools.slice(0, 1);
}

function mockToolCalls(params: GenerationParams, tools: ToolDefinition[]): ToolCall[] {
  const random = seededRandom(params, 'tools');
  const idOf = (index: number) =>
    createHash('sha256')
      .update(JSON.stringify([params.messages, params.seed, index]))
      .digest('base64url')
      .replace(/[-_]/g, 'x')
      .slice(0, 24);
  return tools.map((tool, index) => ({
    id: `call_${idOf(index)}`,
    name: tool.name,
    arguments: JSON.stringify(sampleForSchema(tool.parameters ?? { type: 'object', properties: {} }, random)),
  }));
}

/** The answer text under the request's response format (the words as they are without one). */
function formattedText(params: GenerationParams, words: string): string {
  const format = params.responseFormat;
  if (!format) return words;
  if (format.type === 'json_object') return JSON.stringify({ answer: words.trim() });
  return JSON.stringify(sampleForSchema(format.schema, seededRandom(params, 'format')));
}

/**
 * The mock's answer for these parameters (ignoring timing and failure tags): a completion, or
 * a chat answer when `params.messages` is non-empty.
 */
export function mockCompletion(params: GenerationParams): GenerationResult {
  const directives = parseDirectives(directiveSource(params));
  const calls = toolsToCall(params, directives);
  if (calls.length > 0) {
    const toolCalls = mockToolCalls(params, calls);
    const completionTokens = toolCalls.reduce((sum, call) => sum + countWords(call.arguments), 0);
    return {
      output: '',
      finishReason: 'tool_calls',
      usage: { promptTokens: promptWords(params), completionTokens },
      toolCalls,
    };
  }
  const full = directives.echo ? directives.rest.trimStart() : formattedText(params, generatedText(params));
  const words = pieces(full).filter((piece) => /\S/.test(piece));
  let output = full;
  let finishReason: FinishReason = 'stop';
  if (words.length > params.maxNewTokens) {
    output = words.slice(0, params.maxNewTokens).join('');
    finishReason = 'length';
  }
  // The stop string found first in the text (the earliest one, as an engine meets them).
  let stopSequence: string | undefined;
  let stopAt = Infinity;
  for (const stop of params.stop) {
    const index = stop === '' ? -1 : output.indexOf(stop);
    if (index !== -1 && index < stopAt) [stopAt, stopSequence] = [index, stop];
  }
  if (stopAt !== Infinity) {
    output = output.slice(0, stopAt);
    finishReason = 'stop';
  }
  return {
    output,
    finishReason,
    ...(stopSequence !== undefined ? { stopSequence } : {}),
    usage: { promptTokens: promptWords(params), completionTokens: countWords(output) },
  };
}

/** The mock's chat answer for these messages and parameters (`prompt` is ignored). */
export function mockChatCompletion(params: GenerationParams & { messages: ChatMessage[] }): GenerationResult {
  if (!chatMessagesOf(params)) throw new TypeError('mockChatCompletion needs at least one message');
  return mockCompletion(params);
}

/** The mock's vectors for these inputs (see the file comment). */
export function mockEmbeddings(params: EmbeddingParams): EmbeddingResult {
  const size = params.dimensions ?? MOCK_EMBEDDING_DIMENSIONS;
  const vectors = params.input.map((item) => {
    const random = mulberry32(createHash('sha256').update(JSON.stringify(item)).digest().readUInt32BE(0));
    const raw = Array.from({ length: size }, () => random() * 2 - 1);
    const norm = Math.sqrt(raw.reduce((sum, x) => sum + x * x, 0)) || 1;
    return raw.map((x) => x / norm);
  });
  const promptTokens = params.input.reduce(
    (sum, item) => sum + (typeof item === 'string' ? countWords(item) : item.length),
    0,
  );
  return { vectors, usage: { promptTokens, completionTokens: 0 } };
}
