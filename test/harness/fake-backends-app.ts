/**
 * The app most API-shape tests need: the mock model and chat models on a fake vLLM and a fake
 * Ollama, listening on loopback (for SDK clients), with one key that the rate limit never stops.
 */
import { type TestApp, startTestApp } from './app';
import { createKey } from './keys';
import { listenOnLoopback } from './listen';
import { FakeOllama } from '../fakes/fake-ollama';
import { FakeVllm } from '../fakes/fake-vllm';

export interface FakeBackendsApp {
  app: TestApp;
  vllm: FakeVllm;
  ollama: FakeOllama;
  /** The server's origin, `http://127.0.0.1:<port>` (no path). */
  baseUrl: string;
  key: string;
  close(): Promise<void>;
}

/**
 * Models: `mock` (max_new_tokens `mockMax`), `vllm-chat` (on the fake vLLM, `vllmMax`),
 * `ollama-chat` (on the fake Ollama), then `extraYaml` (more models, indented as list items).
 */
export async function startWithFakeBackends(
  options: { mockMax?: number; vllmMax?: number; extraYaml?: (urls: { vllm: string }) => string } = {},
): Promise<FakeBackendsApp> {
  const [vllm, ollama] = await Promise.all([FakeVllm.start(), FakeOllama.start()]);
  const app = await startTestApp({
    modelsYaml: `default_model: mock
models:
  - name: mock
    provider: mock
    max_new_tokens: ${options.mockMax ?? 64}
  - name: vllm-chat
    provider: vllm
    upstream_model: org/llama
    base_url: ${vllm.url}
    max_new_tokens: ${options.vllmMax ?? 256}
  - name: ollama-chat
    provider: ollama
    upstream_model: llama3:8b
    base_url: ${ollama.url}
${options.extraYaml?.({ vllm: vllm.url }) ?? ''}`,
  });
  const baseUrl = await listenOnLoopback(app);
  const { key } = await createKey(app, { rpm_limit: 100_000 });
  return {
    app,
    vllm,
    ollama,
    baseUrl,
    key,
    close: async () => {
      await app.close();
      await Promise.all([vllm.close(), ollama.close()]);
    },
  };
}
