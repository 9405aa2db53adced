/**
 * Embeddings on the embedded engine: an embedding context (`model.createEmbeddingContext`)
 * created on the first request, with the model's context size and `threads`; inputs are embedded
 * one after another, one request at a time (the context holds one sequence). Prompt tokens = the
 * inputs' tokens. `dimensions` other than the model's own vector size is a 400 naming
 * `dimensions`; token ids outside the vocabulary, or an input longer than the context, a 400
 * naming `input`. The tiny demo model's vectors are meaningless but real: llama.cpp computes them.
 */
import type { LlamaEmbeddingContext, LlamaModel, Token } from 'node-llama-cpp';
import {
  BackendResponseError,
  BackendUnreachableError,
  UnsupportedRequestError,
} from '../../../contracts/backend-errors';
import type { EmbeddingParams, EmbeddingResult } from '../../../contracts/generation';
import type { CallHooks } from '../provider.types';

export class EmbeddingEngine {
  /** Created by the first embedding request. */
  private context: Promise<LlamaEmbeddingContext> | null = null;
  /** Embedding requests run one at a time (the embedding context has one sequence). */
  private turn: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly model: LlamaModel,
    private readonly settings: {
      contextSize: number;
      threads: number;
      vocabularySize: number;
      /** Whether the model prepends a BOS token (its text is then tokenized without a leading space). */
      addsBos: boolean;
    },
    /** False once the engine is closed. */
    private readonly usable: () => boolean,
  ) {}

  async embed(params: EmbeddingParams, signal: AbortSignal, hooks?: CallHooks): Promise<EmbeddingResult> {
    const { model } = this;
    const { contextSize: limit, vocabularySize } = this.settings;
    if (params.dimensions !== null && params.dimensions !== model.embeddingVectorSize) {
      throw new UnsupportedRequestError(
        `the model's vectors have ${model.embeddingVectorSize} dimensions; it cannot make ${params.dimensions}`,
        'dimensions',
      );
    }
    const trim = this.settings.addsBos ? 'trimLeadingSpace' : undefined;
    const inputs = params.input.map((item): Token[] => {
      if (typeof item === 'string') return model.tokenize(item, false, trim);
      if (item.some((id) => id >= vocabularySize)) {
        throw new UnsupportedRequestError(`token ids must be below the vocabulary size ${vocabularySize}`, 'input');
      }
      return item as Token[];
    });
    if (inputs.some((tokens) => tokens.length + 1 > limit)) {
      throw new UnsupportedRequestError(`an input is longer than the context window of ${limit} tokens`, 'input');
    }
    const run = this.turn.then(async () => {
      signal.throwIfAborted();
      if (!this.usable()) throw new BackendUnreachableError('embedded engine is closed');
      const vectors: number[][] = [];
      try {
        const embedder = await this.embeddingContext();
        hooks?.accepted?.();
        for (const tokens of inputs) {
          signal.throwIfAborted();
          vectors.push([...(await embedder.getEmbeddingFor(tokens)).vector]);
        }
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        const message = (err instanceof Error ? err.message : String(err)).slice(0, 200);
        throw new BackendResponseError(`embedded engine failed: ${message}`, null, { cause: err });
      }
      return vectors;
    });
    this.turn = run.catch(() => undefined);
    const vectors = await run;
    const promptTokens = inputs.reduce((sum, tokens) => sum + tokens.length, 0);
    return { vectors, usage: { promptTokens, completionTokens: 0 } };
  }

  async dispose(): Promise<void> {
    const context = this.context;
    this.context = null;
    await context?.then((ctx) => ctx.dispose()).catch(() => undefined);
  }

  private embeddingContext(): Promise<LlamaEmbeddingContext> {
    if (!this.context) {
      const created = this.model.createEmbeddingContext({
        contextSize: this.settings.contextSize,
        threads: this.settings.threads,
      });
      this.context = created;
      // A context that failed to be created is tried again by the next request.
      created.catch(() => this.context === created && (this.context = null));
    }
    return this.context;
  }
}
