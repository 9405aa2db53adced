/**
 * Shared fixtures of the provider tests: stream helpers, request builders, and the remote
 * backends (vLLM, Ollama, OpenAI-compatible) with their fake servers.
 *
 * A `FakeBackend` says how to start a backend's fake and build its provider; `useFakeBackend()`
 * gives a describe block one fake server and one provider (reset before each test, closed after
 * the block). `REMOTE_CASES` pairs every remote backend with both of its endpoints (completions
 * and chat): the behaviour they share is tested once for all six in remote-providers.spec.ts,
 * the rest (request mapping, readiness, dialect quirks) in each backend's own spec.
 */
import { createServer } from 'node:http';
import type { RequestListener, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OllamaProvider } from '../../src/modules/providers/ollama.provider';
import { OpenAiProvider } from '../../src/modules/providers/openai.provider';
import type { ChatMessage, GenerationParams, StreamChunk } from '../../src/contracts/generation';
import type { LlmProvider } from '../../src/modules/providers/provider.types';
import { VllmProvider } from '../../src/modules/providers/vllm.provider';
import { fakeChatCompletion, fakeCompletion } from '../fakes/fake-server';
import type { FakeCompletion, FakeServer } from '../fakes/fake-server';
import { FakeOllama } from '../fakes/fake-ollama';
import { FakeVllm } from '../fakes/fake-vllm';
import { generationParams, modelConfig } from '../fakes/model-config';

/** A signal that never aborts. */
export function signal(): AbortSignal {
  return new AbortController().signal;
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

/** Collects chunks until the stream ends or fails; `error` is null when it ended. */
export async function collectUntilError(
  stream: AsyncIterable<StreamChunk>,
): Promise<{ chunks: StreamChunk[]; error: unknown }> {
  const chunks: StreamChunk[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk);
  } catch (error) {
    return { chunks, error };
  }
  return { chunks, error: null };
}

/** What a promise rejected with (undefined when it resolved). */
export function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/** The text of the delta chunks, joined. */
export function text(chunks: StreamChunk[]): string {
  return chunks.map((c) => (c.type === 'delta' ? c.text : '')).join('');
}

/** Whitespace-separated words. */
export function words(value: string): number {
  return value.split(/\s+/).filter(Boolean).length;
}

/**
 * A chat request. Its prompt is a value that would show up on the wire (or in a mock answer) if
 * a provider used it instead of the messages.
 */
export function chatParams(
  messages: ChatMessage[],
  overrides: Partial<GenerationParams> = {},
): GenerationParams & { messages: ChatMessage[] } {
  return { ...generationParams({ prompt: 'IGNORED PROMPT', ...overrides }), messages };
}

/** An API key that the fakes echo back in their error messages, to test sanitizing. */
export const SECRET = 'sk-upstream-secret-0123456789';

export interface ProviderOptions {
  baseUrl?: string;
  apiKey?: string | null;
  upstreamModel?: string;
}

/** A remote backend: its fake server, its provider, and what its fake says on failures. */
export interface FakeBackend<F extends FakeServer = FakeServer, P extends LlmProvider = LlmProvider> {
  name: string;
  upstreamModel: string;
  paths: { completions: string; chat: string };
  startFake(): Promise<F>;
  /** Builds a provider for the model `upstreamModel` (unless overridden) at `baseUrl`. */
  provider(baseUrl: string, options: ProviderOptions): P;
  /** Fake settings on top of reset() that every test of this backend runs with. */
  prepare?(fake: F): void;
  /** The start of the sanitized message of a `fail` answer. */
  failPattern: RegExp;
  /** The message of the fake's error event in `mid-stream-error` mode. */
  midStreamError: string;
}

/** What the vLLM fake says on failures; the openai backend runs on the same fake. */
const VLLM_ERRORS = {
  failPattern: /^upstream returned HTTP 500: EngineCore encountered an issue/,
  midStreamError: 'upstream reported an error: Engine loop has died',
};

export const VLLM: FakeBackend<FakeVllm, VllmProvider> = {
  name: 'vllm',
  upstreamModel: 'meta-llama/Meta-Llama-3-8B-Instruct',
  paths: { completions: '/v1/completions', chat: '/v1/chat/completions' },
  startFake: () => FakeVllm.start(),
  provider: (baseUrl, { apiKey = null, upstreamModel = VLLM.upstreamModel }) =>
    new VllmProvider(modelConfig({ provider: 'vllm', upstreamModel, apiKey }), baseUrl),
  ...VLLM_ERRORS,
};

export const OLLAMA: FakeBackend<FakeOllama, OllamaProvider> = {
  name: 'ollama',
  upstreamModel: 'llama3:8b',
  paths: { completions: '/api/generate', chat: '/api/chat' },
  startFake: () => FakeOllama.start(),
  provider: (baseUrl, { apiKey = null, upstreamModel = OLLAMA.upstreamModel }) =>
    new OllamaProvider(modelConfig({ provider: 'ollama', upstreamModel, apiKey }), baseUrl),
  failPattern: /^upstream returned HTTP 500: llama runner process has terminated/,
  midStreamError: 'upstream reported an error: an error was encountered while running the model: CUDA error',
};

/**
 * Any OpenAI-compatible server. vLLM is one, so its fake doubles as the server; with
 * `chatStyle = 'openai'` it streams chat like OpenAI (the finish reason on an extra empty-delta
 * chunk). The provider sends the API key unless told otherwise.
 */
export const OPENAI: FakeBackend<FakeVllm, OpenAiProvider> = {
  name: 'openai',
  upstreamModel: 'gpt-4o-mini',
  paths: { completions: '/v1/completions', chat: '/v1/chat/completions' },
  startFake: () => FakeVllm.start(),
  provider: (baseUrl, { apiKey = SECRET, upstreamModel = OPENAI.upstreamModel }) =>
    new OpenAiProvider(modelConfig({ provider: 'openai', upstreamModel, apiKey }), baseUrl),
  prepare: (fake) => {
    fake.chatStyle = 'openai';
  },
  ...VLLM_ERRORS,
};

export interface FakeBackendContext<F extends FakeServer, P extends LlmProvider> {
  readonly fake: F;
  /** The backend's provider with its default options, at the fake's URL. */
  readonly provider: P;
  /** Another provider (the fake's URL unless `baseUrl` is given), closed after the block. */
  newProvider(options?: ProviderOptions): P;
}

/**
 * Starts the backend's fake before the enclosing describe block's tests and closes it (and
 * every provider made here) after them; resets the fake before each test.
 */
export function useFakeBackend<F extends FakeServer, P extends LlmProvider>(
  backend: FakeBackend<F, P>,
): FakeBackendContext<F, P> {
  let fake: F | undefined;
  let provider: P | undefined;
  const providers: P[] = [];
  const context: FakeBackendContext<F, P> = {
    get fake(): F {
      if (!fake) throw new Error('the fake starts in beforeAll');
      return fake;
    },
    get provider(): P {
      if (!provider) throw new Error('the provider is made in beforeAll');
      return provider;
    },
    newProvider: ({ baseUrl, ...options } = {}) => {
      const made = backend.provider(baseUrl ?? context.fake.url, options);
      providers.push(made);
      return made;
    },
  };

  beforeAll(async () => {
    fake = await backend.startFake();
    provider = context.newProvider();
  });

  beforeEach(() => {
    context.fake.reset();
    backend.prepare?.(context.fake);
  });

  afterAll(async () => {
    await Promise.all(providers.map((p) => p.close()));
    await fake?.close();
  });

  return context;
}

/** The messages of the chat cases: 10 words of content. */
export const CHAT_MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Name a colour' },
  { role: 'assistant', content: 'Blue.' },
  { role: 'user', content: 'Another one, please' },
];

/** The prompt of the completion cases: 4 words. */
export const COMPLETION_PROMPT = 'The quick brown fox';

/** One remote backend and one of its endpoints. */
export interface RemoteCase extends EndpointRequest {
  /** e.g. "vllm chat". */
  name: string;
  backend: FakeBackend;
  endpoint: Endpoint;
  path: string;
  /** A request to the backend's other endpoint. */
  otherRequest(): GenerationParams;
}

type Endpoint = 'completions' | 'chat';

/** The request every backend gets on an endpoint, and what the fakes answer to it. */
interface EndpointRequest {
  request(overrides?: Partial<GenerationParams>): GenerationParams;
  /** The fields that carry the input on the wire (every backend sends them as they are). */
  wireInput: Record<string, unknown>;
  /** What the fake answers to `request({maxNewTokens, stop})`. */
  expected(maxNewTokens: number, stop?: string[]): FakeCompletion;
  /** The prompt tokens the fake reports for `request()`. */
  promptTokens: number;
}

const ENDPOINT_REQUESTS: Record<Endpoint, EndpointRequest> = {
  completions: {
    request: (overrides) => generationParams({ prompt: COMPLETION_PROMPT, ...overrides }),
    wireInput: { prompt: COMPLETION_PROMPT },
    expected: (maxNewTokens, stop) => fakeCompletion(COMPLETION_PROMPT, maxNewTokens, stop),
    promptTokens: 4,
  },
  chat: {
    request: (overrides) => chatParams(CHAT_MESSAGES, overrides),
    wireInput: { messages: CHAT_MESSAGES },
    expected: (maxNewTokens, stop) => fakeChatCompletion(CHAT_MESSAGES, maxNewTokens, stop),
    promptTokens: 10,
  },
};

export const REMOTE_CASES: RemoteCase[] = [VLLM, OLLAMA, OPENAI].flatMap((backend: FakeBackend) =>
  (['completions', 'chat'] as const).map((endpoint) => ({
    name: `${backend.name} ${endpoint}`,
    backend,
    endpoint,
    path: backend.paths[endpoint],
    ...ENDPOINT_REQUESTS[endpoint],
    otherRequest: () => ENDPOINT_REQUESTS[endpoint === 'chat' ? 'completions' : 'chat'].request(),
  })),
);

/** The backend's two cases (completions, chat). */
export function remoteCasesOf(backend: FakeBackend): RemoteCase[] {
  return REMOTE_CASES.filter((c) => c.backend === backend);
}

/**
 * A bare HTTP server on 127.0.0.1 for answers the fakes never give; each test sets `handler`.
 * Started before the enclosing describe block's tests, closed after them.
 */
export function useBareServer(): { readonly url: string; handler: RequestListener } {
  let server: Server | undefined;
  const context = {
    url: '',
    handler: ((_req, res) => res.end()) as RequestListener,
  };
  beforeAll(async () => {
    const started = createServer((req, res) => context.handler(req, res));
    server = started;
    await new Promise<void>((resolve) => started.listen(0, '127.0.0.1', resolve));
    context.url = `http://127.0.0.1:${(started.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });
  return context;
}
