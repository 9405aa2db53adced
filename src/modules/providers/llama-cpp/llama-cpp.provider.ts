/**
 * The embedded engine as a provider: GGUF models run in-process with node-llama-cpp (llama.cpp
 * bindings). This file owns the engine's life (load, readiness, close) and runs each request on
 * one of its context sequences; each part of the work has its own file:
 * - engine-loader.ts: the model loaded (the demo model written first when missing), validated,
 *   with its context, chat template, grammars and embedding engine (load-node-llama-cpp.ts and
 *   shared-llama.ts: the ESM package and the one backend per process);
 * - sequence-pool.ts: the context's sequences, taken per request (bounded queue, then
 *   BackendBusyError);
 * - engine-input.ts, chat-rendering.ts: a request's prompt tokens (chat requests rendered);
 * - tool-mode.ts, grammar-cache.ts: tools and structured outputs;
 * - sequence-run.ts: one generation on one sequence (sampler, stop strings, usage);
 * - embedding-engine.ts: /v1/embeddings on the same model;
 * - callback-stream.ts: a run's deltas as a stream.
 */

import { BackendResponseError, BackendUnreachableError } from '../../../contracts/backend-errors';
import type {
  EmbeddingParams,
  EmbeddingResult,
  GenerationParams,
  GenerationResult,
  ResponseFormat,
  StreamChunk,
} from '../../../contracts/generation';
import type { LlamaCppConfig, ModelConfig } from '../../../contracts/model-config';
import type { CallHooks, LlmProvider } from '../provider.types';
import { callbackStream } from './callback-stream';
import { functionCalling } from './chat-rendering';
import { engineInput } from './engine-input';
import {
  disposeParts,
  type EngineParts,
  type LlamaCppProviderInfo,
  loadEngine,
  type LoadedEngine,
} from './engine-loader';
import { SequencePool } from './sequence-pool';
import { runOnSequence } from './sequence-run';
import { toolMode } from './tool-mode';

export type { LlamaCppProviderInfo };

type State = 'new' | 'loading' | 'ready' | 'failed' | 'closed';

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
  /** What the load created so far (disposed if it fails or the provider closes). */
  private parts: EngineParts = {};
  private engine: LoadedEngine | null = null;
  private readonly pool: SequencePool;
  /** Generations holding a sequence: their internal abort controllers and completion promises. */
  private readonly running = new Map<AbortController, Promise<unknown>>();
  private _info: LlamaCppProviderInfo | null = null;

  constructor(private readonly modelConfig: ModelConfig) {
    if (!modelConfig.llamaCpp) {
      throw new Error(`model ${modelConfig.name}: provider llama-cpp needs a llama_cpp section`);
    }
    this.cfg = modelConfig.llamaCpp;
    this.pool = new SequencePool(Math.max(0, this.cfg.maxQueue));
  }

  /** What was loaded (null until init() succeeded). */
  get info(): LlamaCppProviderInfo | null {
    return this._info;
  }

  /** Sequences currently generating, and requests waiting for one. */
  get load(): { active: number; queued: number } {
    return { active: this.running.size, queued: this.pool.queued };
  }

  init(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new Error(`model ${this.modelConfig.name}: provider is closed`));
    this.initPromise ??= this.doInit();
    return this.initPromise;
  }

  private async doInit(): Promise<void> {
    this.state = 'loading';
    const { modelPath } = this.cfg;
    const name = this.modelConfig.name;
    try {
      const checkOpen = () => {
        if ((this.state as State) === 'closed') throw new Error('closed');
      };
      const { engine, slots, info } = await loadEngine(this.cfg, this.parts, checkOpen, () => this.state === 'ready');
      // Synchronous from here on: close() cannot interleave before the state becomes 'ready'.
      this.pool.fill(slots);
      this.engine = engine;
      this._info = info;
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

  stream(params: GenerationParams, signal: AbortSignal, hooks?: CallHooks): AsyncIterable<StreamChunk> {
    return callbackStream((local, onDelta) => this.execute(params, local, onDelta, hooks), signal);
  }

  async embed(params: EmbeddingParams, signal: AbortSignal, hooks?: CallHooks): Promise<EmbeddingResult> {
    const engine = await this.readyEngine(signal);
    return engine.embeddings.embed(params, signal, hooks);
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasLoading = this.state === 'loading';
    this.state = 'closed';
    const closedError = new BackendUnreachableError('embedded engine is closed');
    this.pool.close(closedError);
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
    this.pool.close(new BackendUnreachableError('embedded engine is closed'));
    const { parts, engine } = this;
    this.parts = {};
    this.engine = null;
    await disposeParts(parts, engine);
  }

  /** The loaded engine, or BackendUnreachableError when it is not (yet) usable. */
  private async readyEngine(signal: AbortSignal): Promise<LoadedEngine> {
    signal.throwIfAborted();
    if (this.state === 'loading') await this.initPromise!.catch(() => undefined);
    if (this.state !== 'ready' || !this.engine) {
      throw new BackendUnreachableError(
        this.state === 'failed'
          ? 'embedded engine failed to load'
          : `embedded engine is ${this.state === 'closed' ? 'closed' : 'not loaded'}`,
      );
    }
    return this.engine;
  }

  private async execute(
    params: GenerationParams,
    signal: AbortSignal,
    onDelta: ((text: string) => void) | null,
    hooks?: CallHooks,
  ): Promise<GenerationResult> {
    const engine = await this.readyEngine(signal);
    const contextSize = engine.context.contextSize;

    if (!Number.isInteger(params.maxNewTokens) || params.maxNewTokens < 1) {
      throw new BackendResponseError(`max_new_tokens must be a positive integer (got ${params.maxNewTokens})`, 400);
    }
    const tools = toolMode(params, functionCalling(engine.chat));
    const { tokens, extraStops } = engineInput(engine, params, tools);
    const format: ResponseFormat | undefined =
      tools?.kind === 'forced'
        ? { type: 'json_schema', name: tools.name, schema: tools.schema, strict: true }
        : params.responseFormat;
    const grammar = format ? await engine.grammars.grammarFor(format) : undefined;
    // LlamaCompletion prepends the BOS token itself when the model asks for it
    // (tokenizer.ggml.add_bos_token), so we count it but do not add it (that would double it).
    const promptTokens = tokens.length + (engine.bosToken !== null ? 1 : 0);
    if (promptTokens === 0) throw new BackendResponseError('the prompt is empty', 400);
    if (promptTokens + params.maxNewTokens > contextSize) {
      throw new BackendResponseError(
        `the prompt is ${promptTokens} tokens; with max_new_tokens ${params.maxNewTokens} it exceeds the context window of ${contextSize} tokens`,
        400,
      );
    }

    const slot = await this.pool.acquire(signal);
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
      const work = runOnSequence(engine, slot, run, { ...params, stop }, signal, ctl, deltas).finally(() => {
        signal.removeEventListener('abort', onAbort);
        this.running.delete(ctl);
        this.pool.release(slot);
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
    const engine = this.engine;
    if (this.state !== 'ready' || !engine) throw new Error('embedded engine is not loaded');
    const { tokens, extraStops } = engineInput(engine, params, toolMode(params, functionCalling(engine.chat)));
    return { prompt: engine.model.detokenize(tokens, true), stop: [...params.stop, ...extraStops] };
  }
}

export function createLlamaCppProvider(model: ModelConfig): LlamaCppProvider {
  return new LlamaCppProvider(model);
}
