/**
 * A deterministic in-process provider for tests and demos; never the default in production. Its
 * answers are pure functions of the request (mock-answers.ts, where the rules and the special
 * `[mock:…]` prompt tags are described); this file acts them out: the failure tags before any
 * output, the slow and failing streams, and aborts, which are honoured immediately (every wait
 * ends at once with the signal's reason). A model whose `upstream_model` is `mock-not-ready`
 * fails checkReady().
 */
import type { ModelConfig } from '../../contracts/model-config';
import { BackendBusyError, BackendResponseError, BackendUnreachableError } from '../../contracts/backend-errors';
import type {
  EmbeddingParams,
  EmbeddingResult,
  GenerationParams,
  GenerationResult,
  StreamChunk,
} from '../../contracts/generation';
import {
  directiveSource,
  type MockDirectives,
  mockCompletion,
  mockEmbeddings,
  parseDirectives,
  pieces,
} from './mock-answers';
import type { CallHooks, LlmProvider } from './provider.types';
import { sleep } from '../../contracts/sleep';

export const MOCK_NOT_READY_MODEL = 'mock-not-ready';

/** Waits until the signal aborts, then throws its reason. */
async function untilAborted(signal: AbortSignal): Promise<never> {
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
  signal.throwIfAborted();
  throw new Error('unreachable: the signal aborted');
}

export class MockProvider implements LlmProvider {
  readonly kind = 'mock' as const;
  readonly upstreamLabel = 'mock';

  constructor(private readonly model: ModelConfig) {}

  async generate(params: GenerationParams, signal: AbortSignal, hooks?: CallHooks): Promise<GenerationResult> {
    const directives = await this.start(params, signal, hooks);
    const result = mockCompletion(params);
    const words = pieces(result.output).length;
    const failAfter = directives.failAfter;
    const waitWords = failAfter === null ? words : Math.min(failAfter, words);
    if (directives.slowMs > 0) await sleep(directives.slowMs * waitWords, signal);
    if (failAfter !== null) throw new BackendResponseError('mock backend failed mid-generation');
    return result;
  }

  async *stream(params: GenerationParams, signal: AbortSignal, hooks?: CallHooks): AsyncGenerator<StreamChunk> {
    const directives = await this.start(params, signal, hooks);
    const result = mockCompletion(params);
    let sent = 0;
    for (const text of pieces(result.output)) {
      if (directives.failAfter !== null && sent >= directives.failAfter) break;
      if (directives.slowMs > 0) await sleep(directives.slowMs, signal);
      signal.throwIfAborted();
      yield { type: 'delta', text };
      sent += 1;
    }
    signal.throwIfAborted();
    if (directives.failAfter !== null) {
      throw new BackendResponseError('mock backend failed mid-stream');
    }
    yield {
      type: 'done',
      finishReason: result.finishReason,
      usage: result.usage,
      ...(result.toolCalls ? { toolCalls: result.toolCalls } : {}),
      ...(result.stopSequence ? { stopSequence: result.stopSequence } : {}),
    };
  }

  async embed(params: EmbeddingParams, signal: AbortSignal, hooks?: CallHooks): Promise<EmbeddingResult> {
    const first = params.input.find((item): item is string => typeof item === 'string') ?? '';
    const directives = await this.start(
      { prompt: first, maxNewTokens: 1, temperature: 1, topP: 1, topK: 0, stop: [], seed: null },
      signal,
      hooks,
    );
    if (directives.slowMs > 0) await sleep(directives.slowMs, signal);
    return mockEmbeddings(params);
  }

  checkReady(signal: AbortSignal): Promise<void> {
    return Promise.resolve().then(() => {
      signal.throwIfAborted();
      if (this.model.upstreamModel === MOCK_NOT_READY_MODEL) {
        throw new Error(`mock model "${this.model.name}" is configured not ready`);
      }
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Checks the abort signal and the failure tags that act before any output. */
  private async start(params: GenerationParams, signal: AbortSignal, hooks?: CallHooks): Promise<MockDirectives> {
    signal.throwIfAborted();
    const directives = parseDirectives(directiveSource(params));
    if (directives.unreachable) throw new BackendUnreachableError('mock upstream unreachable');
    if (directives.busy) throw new BackendBusyError('mock engine busy');
    hooks?.accepted?.(); // a hanging mock is a backend that took the request and never answers
    if (directives.hang) await untilAborted(signal);
    if (directives.error) throw new BackendResponseError('mock backend error', 500);
    return directives;
  }
}
