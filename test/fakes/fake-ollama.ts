/**
 * A fake Ollama server:
 * - `POST /api/generate`: NDJSON lines `{"response": tok, "done": false}` and a final
 *   `{"done": true, "done_reason", "prompt_eval_count", "eval_count", ...}` line; one JSON object
 *   when `stream: false` (Ollama streams by default). Text comes from
 *   `fakeCompletion(prompt, options.num_predict, options.stop)`. Unknown models get 404.
 * - `POST /api/chat`: the same with `message: {"role": "assistant", "content": tok}` instead of
 *   `response` (the final streamed line has an empty content; the non-streamed answer the whole
 *   text). Text comes from `fakeChatCompletion(messages, options.num_predict, options.stop)`;
 *   missing or malformed `messages` get 400.
 * - Tools and formats on `/api/chat`, in Ollama's wire format (ollama docs/api.md "Chat request
 *   (with tools)", api/types.go `ToolCall`): with `tools` the model calls per `fakeToolCall()`:
 *   `message: {role: "assistant", content: "", tool_calls: [{function: {name, arguments: {…}}}]}`
 *   (arguments an object, no id: Ollama gives none), streamed whole on one line before the final
 *   line, whose `done_reason` stays "stop". `format: "json"` answers `{"answer": <last user
 *   message>}`, a schema `format` an object filling its properties.
 * - `POST /api/embed` (ollama docs/api.md "Generate Embeddings"): `input` a string or strings;
 *   answer `{model, embeddings: [[floats], …], total_duration, load_duration,
 *   prompt_eval_count}`; vectors from `fakeEmbedding` (8 numbers, or `dimensions`).
 * - `GET /api/tags`: lists `models` (answers with `health`).
 * - `promptCached`: omits `prompt_eval_count`, as Ollama does when the prompt was cached.
 */
import type { ServerResponse } from 'node:http';
import {
  FakeServer,
  fakeChatCompletion,
  fakeCompletion,
  fakeEmbedding,
  fakeObjectFor,
  fakeToolCall,
  floodOf,
  lastUserContent,
  sleep,
  wireMessages,
  wireTools,
} from './fake-server';
import type { FakeCompletion, RecordedRequest } from './fake-server';

interface GenerateBody {
  model?: unknown;
  prompt?: unknown;
  messages?: unknown;
  stream?: unknown;
  options?: { num_predict?: unknown; stop?: unknown };
  tools?: unknown;
  format?: unknown;
}

const DEFAULT_MODELS = ['llama3:8b', 'mistral:latest'];

export class FakeOllama extends FakeServer {
  models: string[] = [...DEFAULT_MODELS];
  promptCached = false;

  static async start(): Promise<FakeOllama> {
    const fake = new FakeOllama();
    await fake.listen();
    return fake;
  }

  setModels(models: string[]): void {
    this.models = [...models];
  }

  override reset(): void {
    super.reset();
    this.models = [...DEFAULT_MODELS];
    this.promptCached = false;
  }

  /** The message the `fail` mode sends: it leaks the URL and the key, to test sanitizing. */
  failMessage(req: RecordedRequest): string {
    const auth = String(req.headers.authorization ?? 'none');
    return `llama runner process has terminated: exit status 2\u0007 (${this.url} ${auth})`;
  }

  protected async handle(req: RecordedRequest, res: ServerResponse, isClosed: () => boolean): Promise<void> {
    if (req.method === 'GET' && req.path === '/api/tags') {
      if (this.health === 'hang') return;
      if (this.health !== 200) {
        this.sendJson(res, this.health, { error: 'server busy' });
        return;
      }
      const models = this.models.map((name) => ({
        name,
        model: name,
        modified_at: '2024-05-01T10:00:00.000Z',
        size: 4661224676,
        digest: 'a6990ed6be41',
        details: { format: 'gguf', family: 'llama', parameter_size: '8.0B' },
      }));
      this.sendJson(res, 200, { models });
      return;
    }
    if (req.method === 'POST' && req.path === '/api/embed') {
      const body = req.body as { model?: unknown; input?: unknown; dimensions?: unknown };
      const inputs = typeof body.input === 'string' ? [body.input] : (body.input as string[]);
      if (!inputs.every((item) => typeof item === 'string')) {
        this.sendJson(res, 400, { error: 'invalid input type' });
        return;
      }
      const size = typeof body.dimensions === 'number' ? body.dimensions : 8;
      this.sendJson(res, 200, {
        model: body.model,
        embeddings: inputs.map((item) => fakeEmbedding(item, size)),
        total_duration: 14143917,
        load_duration: 1019500,
        prompt_eval_count: inputs.reduce((sum, item) => sum + item.split(/\s+/).filter(Boolean).length, 0),
      });
      return;
    }
    if (req.method !== 'POST' || (req.path !== '/api/generate' && req.path !== '/api/chat')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('404 page not found');
      return;
    }
    await this.generate(req.path === '/api/chat', req, req.body as GenerateBody, res, isClosed);
  }

  private async generate(
    chat: boolean,
    req: RecordedRequest,
    body: GenerateBody,
    res: ServerResponse,
    isClosed: () => boolean,
  ): Promise<void> {
    const stream = body.stream !== false;
    const model = String(body.model);
    if (this.mode === 'hang') return;
    if (this.mode === 'fail' || (this.mode === 'mid-stream-error' && !stream)) {
      this.sendJson(res, this.failStatus, { error: this.failMessage(req) });
      return;
    }
    if (!this.models.includes(model) && !this.models.includes(`${model}:latest`)) {
      this.sendJson(res, 404, { error: `model "${model}" not found, try pulling it first` });
      return;
    }
    if (this.mode === 'garbage') {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.end('<html>bad gateway</html>\n');
      return;
    }
    const options = body.options ?? {};
    const maxTokens = typeof options.num_predict === 'number' ? options.num_predict : 128;
    const stop = Array.isArray(options.stop) ? (options.stop as string[]) : [];
    let completion: FakeCompletion;
    let toolCalls: unknown[] | null = null;
    if (chat) {
      try {
        const messages = wireMessages(body.messages);
        completion = fakeChatCompletion(messages, maxTokens, stop);
        const call = fakeToolCall(messages, wireTools(body.tools), 'auto');
        if (call) {
          toolCalls = [{ function: { name: call.name, arguments: call.arguments } }];
          completion = { ...completion, tokens: [], text: '', finish: 'stop' };
        } else if (body.format !== undefined) {
          const schema = typeof body.format === 'object' ? (body.format as Parameters<typeof fakeObjectFor>[0]) : null;
          const json = JSON.stringify(
            schema ? fakeObjectFor(schema, lastUserContent(messages)) : { answer: lastUserContent(messages) },
          );
          completion = { ...completion, tokens: [json], text: json, finish: 'stop' };
        }
      } catch (err) {
        this.sendJson(res, 400, { error: `invalid messages: ${(err as Error).message}` });
        return;
      }
    } else {
      completion = fakeCompletion(String(body.prompt), maxTokens, stop);
    }
    if (this.mode === 'flood') completion = floodOf(completion);
    const createdAt = '2024-05-01T10:00:00.000Z';
    const text = (t: string, calls: unknown[] | null = null): Record<string, unknown> =>
      chat ? { message: { role: 'assistant', content: t, ...(calls ? { tool_calls: calls } : {}) } } : { response: t };
    const final = {
      model,
      created_at: createdAt,
      ...text(stream ? '' : completion.text, stream ? null : toolCalls),
      done: true,
      done_reason: completion.finish,
      total_duration: 123456789,
      load_duration: 1234567,
      ...(this.promptCached ? {} : { prompt_eval_count: completion.promptTokens }),
      prompt_eval_duration: 1234567,
      eval_count: completion.tokens.length,
      eval_duration: 12345678,
    };
    const delayMs = this.mode === 'slow' || this.mode === 'flood' ? this.delayMs : 0;

    if (!stream) {
      if (delayMs > 0) await sleep(delayMs);
      if (!isClosed()) this.sendJson(res, 200, final);
      return;
    }
    let lines: unknown[] = completion.tokens.map((token) => ({
      model,
      created_at: createdAt,
      ...text(token),
      done: false,
    }));
    if (toolCalls) lines.push({ model, created_at: createdAt, ...text('', toolCalls), done: false });
    if (this.mode === 'mid-stream-error') {
      const error = { error: 'an error was encountered while running the model: CUDA error' };
      lines = [...lines.slice(0, this.afterChunks), error];
    } else if (this.mode === 'truncated') {
      lines = lines.slice(0, this.afterChunks);
    } else {
      lines.push(final);
    }
    const ndjson = lines.map((line) => `${JSON.stringify(line)}\n`);
    await this.streamOut(res, 'application/x-ndjson', ndjson, delayMs, isClosed);
  }
}
