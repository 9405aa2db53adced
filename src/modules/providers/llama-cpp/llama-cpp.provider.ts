/**
 * The embedded engine: GGUF models run in-process with node-llama-cpp (llama.cpp bindings).
 *
 * One LlamaContext with `sequences` context sequences forms a pool. Each request takes a free
 * sequence (clearing its KV history first, so requests are independent and deterministic),
 * or waits in a bounded FIFO queue; when the queue is full the request fails at once with
 * BackendBusyError. Sequences of one context are evaluated together in shared batches.
 *
 * Loading node-llama-cpp: it is ESM-only and has top-level await, so `require()` fails even on
 * Node versions with require(esm) (ERR_REQUIRE_ASYNC_MODULE), and TypeScript/swc turn a
 * literal `import()` into `require()` in our CommonJS output. So we do a real dynamic import
 * through `new Function` (plain Node: `node dist/main.js`, `node -r @swc-node/register`). Under
 * jest (CommonJS, no --experimental-vm-modules) that import() throws
 * ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING_FLAG, so we fall back to a vm.Script compiled with
 * importModuleDynamically = vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER, which runs the
 * import() with Node's own ESM loader (prints one ExperimentalWarning, tests only).
 *
 * Chat requests (`params.messages`) are rendered to a prompt, then run exactly like a completion
 * (same sampler, stop strings, streaming, abort, usage; prompt tokens = the rendered prompt's
 * tokens including BOS):
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
 *
 * Structured outputs (`params.responseFormat`): the sampler is constrained by a grammar, so even
 * a model that knows no JSON can only write JSON: `json_object` uses node-llama-cpp's JSON
 * grammar, `json_schema` a grammar built from the schema (`llama.createGrammarForJsonSchema`,
 * cached per schema). node-llama-cpp reads what it understands of a schema and lets the rest be
 * any value; a schema it still cannot turn into a grammar is a 400 naming `response_format`. The output is valid once the grammar is complete; a generation cut by
 * max_new_tokens first ends with finish "length" and incomplete JSON, as with any backend.
 *
 * Embeddings (`embed()`): an embedding context (`model.createEmbeddingContext`) created on the
 * first request, with the model's context size and `threads`; inputs are embedded one after
 * another, one request at a time (the context holds one sequence). Prompt tokens = the inputs'
 * tokens. `dimensions` other than the model's own vector size is a 400 naming `dimensions`;
 * token ids outside the vocabulary, or an input longer than the context, a 400 naming `input`.
 * The tiny demo model's vectors are meaningless but real: llama.cpp computes them.
 *
 * Tools: where the GGUF's chat template supports function calling (node-llama-cpp recognises
 * its call syntax: `info.functionCalling`), they go through node-llama-cpp's function calling:
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
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import * as vm from 'node:vm';
import type {
  ChatHistoryItem,
  JinjaTemplateChatWrapper,
  Llama,
  ChatModelFunctions,
  ChatModelResponse,
  LlamaChat,
  LlamaCompletion,
  LlamaContext,
  LlamaEmbeddingContext,
  LlamaGrammar,
  LlamaContextSequence,
  LlamaModel,
  Token,
} from 'node-llama-cpp';
import type { LlamaCppConfig, ModelConfig } from '../../../contracts/model-config';
import {
  BackendBusyError,
  BackendResponseError,
  BackendUnreachableError,
  UnsupportedRequestError,
} from '../../../contracts/backend-errors';
import { chatMessagesOf } from '../../../contracts/generation';
import type {
  ChatMessage,
  EmbeddingParams,
  EmbeddingResult,
  FinishReason,
  GenerationParams,
  GenerationResult,
  ResponseFormat,
  StreamChunk,
  TokenUsage,
  ToolCall,
  ToolsParams,
} from '../../../contracts/generation';
import { newToolCallId } from '../tool-calls';
import type { CallHooks, LlmProvider } from '../provider.types';
import { readGgufHeader, type GgufHeader } from '../../gguf/gguf-reader';
import { writeTinyModel } from '../../gguf/tiny-model';

type NodeLlamaCpp = typeof import('node-llama-cpp');

// ---------------------------------------------------------------------------------------------
// Loading the ESM-only package from CommonJS

const nativeImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

function vmImport(specifier: string): Promise<unknown> {
  // Node ≥ 20.19 / 21.7; typed as a number by @types/node, a symbol at runtime.
  const loader: unknown = vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  if (loader === undefined) {
    throw new Error('node-llama-cpp cannot be imported here: this Node has no vm USE_MAIN_CONTEXT_DEFAULT_LOADER');
  }
  const script = new vm.Script('(specifier) => import(specifier)', {
    filename: 'llama-cpp-esm-import.js',
    importModuleDynamically: loader as never,
  });
  return (script.runInThisContext() as (s: string) => Promise<unknown>)(specifier);
}

let nodeLlamaCpp: Promise<NodeLlamaCpp> | null = null;

/** Imports node-llama-cpp once per process (see the file comment for why it is done this way). */
export function loadNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  if (!nodeLlamaCpp) {
    const load = async (): Promise<NodeLlamaCpp> => {
      // An absolute file URL: resolution must not depend on the importing script or the cwd.
      const url = pathToFileURL(require.resolve('node-llama-cpp')).href;
      try {
        return (await nativeImport(url)) as NodeLlamaCpp;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (
          code !== 'ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING_FLAG' &&
          code !== 'ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING'
        ) {
          throw err;
        }
        return (await vmImport(url)) as NodeLlamaCpp;
      }
    };
    nodeLlamaCpp = load();
    nodeLlamaCpp.catch(() => (nodeLlamaCpp = null));
  }
  return nodeLlamaCpp;
}

// ---------------------------------------------------------------------------------------------
// One llama.cpp backend per process, shared by every embedded model (reference-counted)

interface SharedLlama {
  promise: Promise<Llama>;
  refs: number;
}
let sharedLlama: SharedLlama | null = null;

function acquireLlama(): { llama: Promise<Llama>; release: () => Promise<void> } {
  if (!sharedLlama) {
    const entry: SharedLlama = {
      refs: 0,
      // maxThreads 0: no process-wide cap, so each context uses exactly its own `threads`.
      promise: loadNodeLlamaCpp().then((nlc) => nlc.getLlama({ gpu: false, build: 'never', maxThreads: 0 })),
    };
    entry.promise.catch(() => {
      if (sharedLlama === entry) sharedLlama = null;
    });
    sharedLlama = entry;
  }
  const entry = sharedLlama;
  entry.refs++;
  let released = false;
  return {
    llama: entry.promise,
    release: async () => {
      if (released) return;
      released = true;
      if (--entry.refs > 0) return;
      if (sharedLlama === entry) sharedLlama = null;
      const llama = await entry.promise.catch(() => null);
      await llama?.dispose();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Stop strings

/**
 * Text-level stop-string handling. Emits text only once it can no longer be the start of a
 * stop string (a possible partial match at the end is held back), and cuts the output before
 * the earliest stop string. node-llama-cpp's own customStopTriggers hold back partial matches
 * too, but at maxTokens they silently drop the held-back tail from the response, so a
 * length-limited output ending in e.g. "\n" with stop ["\n\n"] would lose its "\n".
 */
export class StopStringFilter {
  private readonly stops: string[];
  private readonly maxLen: number;
  private text = '';
  private emitted = 0;
  stopped = false;

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
    this.maxLen = Math.max(0, ...this.stops.map((s) => s.length));
  }

  /** Adds generated text; returns the text that is now safe to emit (possibly ''). */
  push(chunk: string): string {
    if (this.stopped || chunk === '') return '';
    const searchFrom = Math.max(0, this.text.length - this.maxLen + 1);
    this.text += chunk;
    let cut = -1;
    for (const s of this.stops) {
      const i = this.text.indexOf(s, searchFrom);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.stopped = true;
      this.text = this.text.slice(0, cut);
      return this.take(cut);
    }
    let hold = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.text.length); k > hold; k--) {
        if (this.text.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    return this.take(this.text.length - hold);
  }

  /** At the end of a generation that was not stopped: whatever was held back. */
  flush(): string {
    return this.take(this.text.length);
  }

  /** The output so far (cut before the stop string once stopped). */
  get output(): string {
    return this.text;
  }

  private take(end: number): string {
    if (end <= this.emitted) return '';
    const out = this.text.slice(this.emitted, end);
    this.emitted = end;
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Chat templates

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
function toChatHistory(messages: readonly ChatMessage[], withTools = false): ChatHistoryItem[] {
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
function chatModelFunctions(tools: ToolsParams['tools']): ChatModelFunctions {
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
type ChatRenderer = { kind: 'gguf'; wrapper: JinjaTemplateChatWrapper } | { kind: 'plain' };

// ---------------------------------------------------------------------------------------------
// The provider

interface Slot {
  sequence: LlamaContextSequence;
  completion: LlamaCompletion;
  /** For function calling; created on the slot's first request with tools. */
  chat?: LlamaChat;
}

interface Waiter {
  resolve(slot: Slot): void;
  reject(err: unknown): void;
}

type State = 'new' | 'loading' | 'ready' | 'failed' | 'closed';

export interface LlamaCppProviderInfo {
  modelPath: string;
  /** True when init() wrote the tiny demo model because the file was missing. */
  generatedModel: boolean;
  trainedContextLength: number;
  /** The context window per sequence actually created (≤ trained context). */
  contextSize: number;
  sequences: number;
  threads: number;
  maxQueue: number;
  loadMs: number;
  /** The chat template in use: the GGUF's own, or the plain documented one. */
  chatTemplate: 'gguf' | 'plain';
  /** Why the GGUF's chat template could not be used (null when it is used or there is none). */
  chatTemplateError: string | null;
  /** Whether the chat template does function calling (tools are offered to the model). */
  functionCalling: boolean;
}

/** A request's input, ready for the engine. */
interface EngineInput {
  /** Without the BOS token LlamaCompletion prepends. */
  tokens: Token[];
  /** Stop strings added to the request's own (the plain chat template's). */
  extraStops: readonly string[];
}

/** How a request with tools runs (see the file comment); null: as a plain completion. */
type ToolMode =
  | { kind: 'auto'; history: ChatHistoryItem[]; functions: ChatModelFunctions; parallel: boolean }
  | { kind: 'forced'; name: string; schema: Record<string, unknown> };

const SEED_SPACE = 0x1_0000_0000;
const MAX_CACHED_GRAMMARS = 64;

/** Sampler seed for llama.cpp (uint32). null → a fresh random seed per request. */
function resolveSeed(seed: number | null): number {
  if (seed === null || !Number.isFinite(seed)) return randomInt(0, SEED_SPACE - 1);
  return ((Math.floor(seed) % SEED_SPACE) + SEED_SPACE) % SEED_SPACE;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class LlamaCppProvider implements LlmProvider {
  readonly kind = 'llama-cpp' as const;
  readonly upstreamLabel = 'embedded';

  private readonly cfg: LlamaCppConfig;
  private state: State = 'new';
  private initPromise: Promise<void> | null = null;
  private initError: unknown = null;
  private releaseLlama: (() => Promise<void>) | null = null;
  private llama: Llama | null = null;
  private nlc: NodeLlamaCpp | null = null;
  private model: LlamaModel | null = null;
  private vocabularySize = 0;
  /** Created by the first embedding request. */
  private embeddingContext: Promise<LlamaEmbeddingContext> | null = null;
  /** Embedding requests run one at a time (the embedding context has one sequence). */
  private embeddingTurn: Promise<unknown> = Promise.resolve();
  /** Grammars of the response formats seen, by canonical JSON (building one is not free). */
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();
  private context: LlamaContext | null = null;
  private bosToken: Token | null = null;
  private chat: ChatRenderer = { kind: 'plain' };
  private readonly free: Slot[] = [];
  private readonly waiters: Waiter[] = [];
  /** Generations holding a sequence: their internal abort controllers and completion promises. */
  private readonly running = new Map<AbortController, Promise<unknown>>();
  private _info: LlamaCppProviderInfo | null = null;

  constructor(private readonly modelConfig: ModelConfig) {
    if (!modelConfig.llamaCpp) {
      throw new Error(`model ${modelConfig.name}: provider llama-cpp needs a llama_cpp section`);
    }
    this.cfg = modelConfig.llamaCpp;
  }

  /** What was loaded (null until init() succeeded). */
  get info(): LlamaCppProviderInfo | null {
    return this._info;
  }

  /** Sequences currently generating, and requests waiting for one. */
  get load(): { active: number; queued: number } {
    return { active: this.running.size, queued: this.waiters.length };
  }

  init(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new Error(`model ${this.modelConfig.name}: provider is closed`));
    this.initPromise ??= this.doInit();
    return this.initPromise;
  }

  private async doInit(): Promise<void> {
    this.state = 'loading';
    const started = Date.now();
    const { modelPath } = this.cfg;
    const name = this.modelConfig.name;
    try {
      let generatedModel = false;
      if (this.cfg.generateIfMissing && !existsSync(modelPath)) {
        try {
          writeTinyModel(modelPath);
        } catch (err) {
          throw new Error(`cannot write the tiny demo model to ${modelPath}: ${errorMessage(err)}`, { cause: err });
        }
        generatedModel = true;
      }
      // Validate before llama.cpp sees the file: some malformed models abort the process.
      const header: GgufHeader = await readGgufHeader(modelPath);

      const nlc = await loadNodeLlamaCpp();
      this.nlc = nlc;
      const handle = acquireLlama();
      this.releaseLlama = handle.release;
      const llama = await handle.llama;
      this.llama = llama;
      this.assertNotClosed();
      this.model = await llama.loadModel({ modelPath, gpuLayers: 0 });
      this.assertNotClosed();

      this.vocabularySize = header.vocabularySize;
      const trained = Math.min(header.trainedContextLength, this.model.trainContextSize);
      const threads = Math.max(1, Math.floor(this.cfg.threads || 1));
      const sequences = Math.max(1, Math.floor(this.cfg.sequences || 1));
      this.context = await this.model.createContext({
        contextSize: Math.max(16, Math.min(this.cfg.contextSize, trained)),
        sequences,
        threads,
        // With flash attention, results depend on how sequences share a batch and the KV cache
        // (measured: ~3% of concurrent requests diverged from their sequential result, even
        // greedy ones); without it they are identical (0 of 480), and the tiny model is faster.
        flashAttention: false,
      });
      this.assertNotClosed();

      // Synchronous from here on: close() cannot interleave before the state becomes 'ready'.
      for (let i = 0; i < sequences; i++) {
        const sequence = this.context.getSequence();
        this.free.push({ sequence, completion: new nlc.LlamaCompletion({ contextSequence: sequence }) });
      }
      this.bosToken = beginningToken(this.model);
      const chat = loadChatTemplate(nlc, header);
      this.chat = chat.renderer;
      this._info = {
        modelPath,
        generatedModel,
        trainedContextLength: header.trainedContextLength,
        contextSize: this.context.contextSize,
        sequences,
        threads,
        maxQueue: Math.max(0, this.cfg.maxQueue),
        loadMs: Date.now() - started,
        chatTemplate: chat.renderer.kind,
        chatTemplateError: chat.error,
        functionCalling: this.functionCalling,
      };
      this.state = 'ready';
    } catch (err) {
      this.initError = err;
      const closed = (this.state as State) === 'closed';
      if (!closed) this.state = 'failed';
      await this.disposeEngine();
      if (closed) throw new Error(`model ${name}: provider closed while loading`, { cause: err });
      if (err instanceof Error && err.name === 'GgufFileError') throw err;
      throw new Error(`model ${name}: cannot load ${modelPath}: ${errorMessage(err)}`, { cause: err });
    }
  }

  /** Whether the GGUF's chat template does function calling (node-llama-cpp found its call syntax). */
  private get functionCalling(): boolean {
    return this.chat.kind === 'gguf' && this.chat.wrapper.usingJinjaFunctionCallTemplate;
  }

  /** How the request's tools run, or null (no tools, or tool_choice none); throws for what cannot run. */
  private toolMode(params: GenerationParams): ToolMode | null {
    const offered = params.tools;
    if (!offered || offered.choice === 'none') return null;
    if (!this.functionCalling) {
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

  private assertNotClosed(): void {
    if ((this.state as State) === 'closed') throw new Error('closed');
  }

  async checkReady(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.state === 'ready') return;
    if (this.state === 'failed') {
      throw new Error(`embedded engine failed to load: ${errorMessage(this.initError)}`);
    }
    throw new Error(`embedded engine is ${this.state === 'closed' ? 'closed' : 'not loaded yet'}`);
  }

  generate(params: GenerationParams, signal: AbortSignal, hooks?: CallHooks): Promise<GenerationResult> {
    return this.execute(params, signal, null, hooks);
  }

  async *stream(params: GenerationParams, signal: AbortSignal, hooks?: CallHooks): AsyncIterable<StreamChunk> {
    // Our own controller too, so that a consumer that stops iterating early also stops the engine.
    const local = new AbortController();
    const forward = (): void => local.abort(signal.reason);
    if (signal.aborted) forward();
    else signal.addEventListener('abort', forward, { once: true });

    const pending: string[] = [];
    let wake: (() => void) | null = null;
    type Outcome = { ok: true; result: GenerationResult } | { ok: false; error: unknown };
    let outcome = null as Outcome | null;
    const notify = (): void => {
      const w = wake;
      wake = null;
      w?.();
    };
    this.execute(
      params,
      local.signal,
      (text) => {
        pending.push(text);
        notify();
      },
      hooks,
    ).then(
      (result) => {
        outcome = { ok: true, result };
        notify();
      },
      (error: unknown) => {
        outcome = { ok: false, error };
        notify();
      },
    );

    try {
      for (;;) {
        while (pending.length > 0) yield { type: 'delta', text: pending.shift()! };
        const o = outcome;
        if (o) {
          while (pending.length > 0) yield { type: 'delta', text: pending.shift()! };
          if (!o.ok) throw o.error;
          const { finishReason, usage, toolCalls } = o.result;
          yield { type: 'done', finishReason, usage, ...(toolCalls ? { toolCalls } : {}) };
          return;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      signal.removeEventListener('abort', forward);
      if (!outcome) local.abort(new Error('stream consumer stopped'));
    }
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasLoading = this.state === 'loading';
    this.state = 'closed';
    const closedError = new BackendUnreachableError('embedded engine is closed');
    for (const w of this.waiters.splice(0)) w.reject(closedError);
    for (const ctl of this.running.keys()) ctl.abort(closedError);
    await Promise.allSettled([...this.running.values()]);
    if (wasLoading) {
      // doInit notices the closed state and disposes what it created.
      await this.initPromise?.catch(() => undefined);
      return;
    }
    await this.disposeEngine();
  }

  private async disposeEngine(): Promise<void> {
    this.free.length = 0;
    const embedding = this.embeddingContext;
    this.embeddingContext = null;
    await embedding?.then((ctx) => ctx.dispose()).catch(() => undefined);
    const context = this.context;
    const model = this.model;
    const release = this.releaseLlama;
    this.context = null;
    this.model = null;
    this.llama = null;
    this.grammars.clear();
    this.releaseLlama = null;
    try {
      await context?.dispose();
      await model?.dispose();
    } finally {
      await release?.();
    }
  }

  // ----- pool ---------------------------------------------------------------------------------

  private acquire(signal: AbortSignal): Promise<Slot> {
    // The engine may have been closed while this request prepared (grammar, template): a waiter
    // queued now would never be served.
    if (this.state !== 'ready') return Promise.reject(new BackendUnreachableError('embedded engine is closed'));
    const slot = this.free.pop();
    if (slot) return Promise.resolve(slot);
    const maxQueue = Math.max(0, this.cfg.maxQueue);
    if (this.waiters.length >= maxQueue) {
      return Promise.reject(
        new BackendBusyError(
          `embedded engine is busy: ${this.running.size} generations running, ${this.waiters.length} queued (max ${maxQueue})`,
        ),
      );
    }
    return new Promise<Slot>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason);
      };
      const waiter: Waiter = {
        resolve: (s) => {
          signal.removeEventListener('abort', onAbort);
          resolve(s);
        },
        reject: (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      this.waiters.push(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private release(slot: Slot): void {
    if (this.state !== 'ready') return;
    const next = this.waiters.shift();
    if (next) next.resolve(slot);
    else this.free.push(slot);
  }

  // ----- embeddings ---------------------------------------------------------------------------

  async embed(params: EmbeddingParams, signal: AbortSignal, hooks?: CallHooks): Promise<EmbeddingResult> {
    const { model, context } = await this.readyEngine(signal);
    if (params.dimensions !== null && params.dimensions !== model.embeddingVectorSize) {
      throw new UnsupportedRequestError(
        `the model's vectors have ${model.embeddingVectorSize} dimensions; it cannot make ${params.dimensions}`,
        'dimensions',
      );
    }
    const trim = this.bosToken !== null ? 'trimLeadingSpace' : undefined;
    const inputs = params.input.map((item): Token[] => {
      if (typeof item === 'string') return model.tokenize(item, false, trim);
      if (item.some((id) => id >= this.vocabularySize)) {
        throw new UnsupportedRequestError(
          `token ids must be below the vocabulary size ${this.vocabularySize}`,
          'input',
        );
      }
      return item as Token[];
    });
    const limit = context.contextSize;
    if (inputs.some((tokens) => tokens.length + 1 > limit)) {
      throw new UnsupportedRequestError(`an input is longer than the context window of ${limit} tokens`, 'input');
    }
    const run = this.embeddingTurn.then(async () => {
      signal.throwIfAborted();
      if (this.state !== 'ready') throw new BackendUnreachableError('embedded engine is closed');
      if (!this.embeddingContext) {
        const created = model.createEmbeddingContext({
          contextSize: limit,
          threads: Math.max(1, Math.floor(this.cfg.threads || 1)),
        });
        this.embeddingContext = created;
        // A context that failed to be created is tried again by the next request.
        created.catch(() => this.embeddingContext === created && (this.embeddingContext = null));
      }
      const vectors: number[][] = [];
      try {
        const embedder = await this.embeddingContext;
        hooks?.accepted?.();
        for (const tokens of inputs) {
          signal.throwIfAborted();
          vectors.push([...(await embedder.getEmbeddingFor(tokens)).vector]);
        }
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        throw new BackendResponseError(`embedded engine failed: ${errorMessage(err).slice(0, 200)}`, null, {
          cause: err,
        });
      }
      return vectors;
    });
    this.embeddingTurn = run.catch(() => undefined);
    const vectors = await run;
    const promptTokens = inputs.reduce((sum, tokens) => sum + tokens.length, 0);
    return { vectors, usage: { promptTokens, completionTokens: 0 } };
  }

  /** The loaded model and context, or BackendUnreachableError when the engine is not (yet) usable. */
  private async readyEngine(signal: AbortSignal): Promise<{ model: LlamaModel; context: LlamaContext }> {
    signal.throwIfAborted();
    if (this.state === 'loading') await this.initPromise!.catch(() => undefined);
    if (this.state !== 'ready' || !this.model || !this.context) {
      throw new BackendUnreachableError(
        this.state === 'failed'
          ? 'embedded engine failed to load'
          : `embedded engine is ${this.state === 'closed' ? 'closed' : 'not loaded'}`,
      );
    }
    return { model: this.model, context: this.context };
  }

  // ----- generation ---------------------------------------------------------------------------

  private async execute(
    params: GenerationParams,
    signal: AbortSignal,
    onDelta: ((text: string) => void) | null,
    hooks?: CallHooks,
  ): Promise<GenerationResult> {
    const { model, context } = await this.readyEngine(signal);
    const contextSize = context.contextSize;

    if (!Number.isInteger(params.maxNewTokens) || params.maxNewTokens < 1) {
      throw new BackendResponseError(`max_new_tokens must be a positive integer (got ${params.maxNewTokens})`, 400);
    }
    const tools = this.toolMode(params);
    const { tokens, extraStops } = this.engineInput(model, params, tools);
    const format: ResponseFormat | undefined =
      tools?.kind === 'forced'
        ? { type: 'json_schema', name: tools.name, schema: tools.schema, strict: true }
        : params.responseFormat;
    const grammar = format ? await this.grammarFor(format) : undefined;
    // LlamaCompletion prepends the BOS token itself when the model asks for it
    // (tokenizer.ggml.add_bos_token), so we count it but do not add it (that would double it).
    const promptTokens = tokens.length + (this.bosToken !== null ? 1 : 0);
    if (promptTokens === 0) throw new BackendResponseError('the prompt is empty', 400);
    if (promptTokens + params.maxNewTokens > contextSize) {
      throw new BackendResponseError(
        `the prompt is ${promptTokens} tokens; with max_new_tokens ${params.maxNewTokens} it exceeds the context window of ${contextSize} tokens`,
        400,
      );
    }

    const slot = await this.acquire(signal);
    hooks?.accepted?.(); // a sequence is ours: the engine starts on the prompt now
    const ctl = new AbortController();
    // The caller's promise rejects as soon as its signal aborts; the sequence goes back to the
    // pool only once the engine has let go of it (after the current token).
    return new Promise<GenerationResult>((resolve, reject) => {
      const onAbort = (): void => {
        ctl.abort(signal.reason);
        reject(signal.reason);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      const stop = extraStops.length > 0 ? [...params.stop, ...extraStops] : params.stop;
      const run = { tokens, promptTokens, grammar, tools };
      // A forced call's arguments are not content: they come whole, as the call, with the end.
      const deltas = tools?.kind === 'forced' ? null : onDelta;
      const work = this.runOnSlot(slot, run, { ...params, stop }, signal, ctl, deltas).finally(() => {
        signal.removeEventListener('abort', onAbort);
        this.running.delete(ctl);
        this.release(slot);
      });
      this.running.set(ctl, work);
      work.then(resolve, reject);
    });
  }

  /**
   * What the engine runs for these parameters: the prompt as text with special tokens written
   * out (e.g. "<s>"), without the BOS token the engine adds (for a chat request, the rendered
   * template), and the stop strings in effect (the request's, plus the plain chat template's).
   */
  renderInput(params: GenerationParams): { prompt: string; stop: string[] } {
    if (this.state !== 'ready' || !this.model) throw new Error('embedded engine is not loaded');
    const { tokens, extraStops } = this.engineInput(this.model, params, this.toolMode(params));
    return { prompt: this.model.detokenize(tokens, true), stop: [...params.stop, ...extraStops] };
  }

  private engineInput(model: LlamaModel, params: GenerationParams, tools: ToolMode | null = null): EngineInput {
    const trim = this.bosToken !== null ? 'trimLeadingSpace' : undefined;
    const messages = chatMessagesOf(params);
    if (!messages) {
      // Tokenized exactly as LlamaCompletion would for a string input.
      return { tokens: model.tokenize(params.prompt, false, trim), extraStops: [] };
    }
    if (this.chat.kind === 'plain') {
      return { tokens: model.tokenize(renderPlainChat(messages), false, trim), extraStops: PLAIN_CHAT_TEMPLATE.stop };
    }
    let tokens: Token[];
    try {
      const { wrapper } = this.chat;
      const offered =
        params.tools && params.tools.choice !== 'none' ? chatModelFunctions(params.tools.tools) : undefined;
      const { contextText } = wrapper.generateContextState({
        chatHistory: toChatHistory(messages, this.functionCalling),
        availableFunctions: offered,
        documentFunctionParams: offered ? true : undefined,
      });
      // A forced call: the model's turn starts with the template's call syntax and the name.
      const call = wrapper.settings.functions.call;
      const text =
        tools?.kind === 'forced'
          ? this.nlc!.LlamaText([contextText, call.prefix, tools.name, call.paramsPrefix])
          : contextText;
      tokens = text.tokenize(model.tokenizer, trim);
    } catch (err) {
      if (err instanceof UnsupportedRequestError) throw err;
      throw new BackendResponseError(`the chat template failed: ${errorMessage(err).slice(0, 200)}`, 400, {
        cause: err,
      });
    }
    // The template's own BOS ({{ bos_token }}) is the one LlamaCompletion adds.
    if (this.bosToken !== null && tokens[0] === this.bosToken) tokens = tokens.slice(1);
    return { tokens, extraStops: [] };
  }

  /**
   * The grammar that keeps the output in the response format (see the file comment). A schema
   * node-llama-cpp cannot compile is the client's problem: 400 naming `response_format`.
   */
  private grammarFor(format: ResponseFormat): Promise<LlamaGrammar> {
    const key = JSON.stringify(format.type === 'json_schema' ? format.schema : format.type);
    let grammar = this.grammars.get(key);
    if (!grammar) {
      const llama = this.llama!;
      grammar = (
        format.type === 'json_schema'
          ? llama.createGrammarForJsonSchema(format.schema as never)
          : llama.getGrammarFor('json')
      ) as Promise<LlamaGrammar>;
      // Bounded: a client sending ever-new schemas must not grow memory without end.
      if (this.grammars.size >= MAX_CACHED_GRAMMARS) this.grammars.delete(this.grammars.keys().next().value!);
      this.grammars.set(key, grammar);
      grammar.catch(() => this.grammars.delete(key));
    }
    return grammar.catch((err: unknown) => {
      throw new UnsupportedRequestError(
        `the JSON schema cannot be turned into a grammar: ${errorMessage(err).slice(0, 200)}`,
        'response_format',
      );
    });
  }

  private async runOnSlot(
    slot: Slot,
    {
      tokens,
      promptTokens,
      grammar,
      tools,
    }: { tokens: Token[]; promptTokens: number; grammar?: LlamaGrammar; tools: ToolMode | null },
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
      if (tools?.kind === 'auto' && this.chat.kind === 'gguf') {
        slot.chat ??= new this.nlc!.LlamaChat({
          contextSequence: sequence,
          chatWrapper: this.chat.wrapper,
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
}

/** The GGUF's chat template as a renderer, or the plain template (with the reason, if any). */
function loadChatTemplate(nlc: NodeLlamaCpp, header: GgufHeader): { renderer: ChatRenderer; error: string | null } {
  const template = header.metadata.get('tokenizer.chat_template');
  if (typeof template !== 'string' || template.trim() === '') return { renderer: { kind: 'plain' }, error: null };
  try {
    // reasoning: null leaves the template's own thinking default alone, as vLLM and Ollama do.
    const wrapper = new nlc.JinjaTemplateChatWrapper({ template, reasoning: null });
    return { renderer: { kind: 'gguf', wrapper }, error: null };
  } catch (err) {
    return { renderer: { kind: 'plain' }, error: errorMessage(err).slice(0, 300) };
  }
}

/** Mirrors node-llama-cpp's resolveBeginningTokenToPrepend (what LlamaCompletion prepends). */
function beginningToken(model: LlamaModel): Token | null {
  const type = String(model.vocabularyType);
  if (type === 'rwkv' || type === 'ugm') return null;
  if (type === 'wpm') return model.tokens.bos;
  return model.tokens.shouldPrependBosToken ? model.tokens.bos : null;
}

export function createLlamaCppProvider(model: ModelConfig): LlamaCppProvider {
  return new LlamaCppProvider(model);
}
