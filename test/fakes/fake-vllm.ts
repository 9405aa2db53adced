/**
 * A fake vLLM OpenAI-compatible server (also usable as any OpenAI-compatible server):
 * - `POST /v1/completions`: non-streamed JSON, or SSE `data: {...}` chunks (one per token, the
 *   finish reason on the last), a usage chunk with empty `choices` when
 *   `stream_options.include_usage` is set, then `data: [DONE]`. Text comes from
 *   `fakeCompletion(prompt, max_tokens, stop)`; errors use vLLM's `{"error": {...}}` body.
 * - `POST /v1/chat/completions`: the same with `chat.completion` objects: non-streamed
 *   `choices[0].message` `{role: "assistant", content}`; streamed `chat.completion.chunk`s: a
 *   role-only first delta (`{role: "assistant", content: ""}`), one `{content}` delta per token,
 *   the finish reason on the last token's chunk (vLLM) or, with `chatStyle = 'openai'`, on an
 *   extra chunk with an empty delta (OpenAI). Text comes from
 *   `fakeChatCompletion(messages, max_tokens, stop)`; missing or malformed `messages` get 400.
 *   Modes count token chunks (the role chunk is always sent first).
 * - Chat tool calls and structured outputs, in vLLM's wire format (vllm/entrypoints/openai/
 *   protocol.py `ToolCall`, `DeltaToolCall`, `DeltaFunctionCall`; serving_chat.py): with `tools`
 *   the model calls per `fakeToolCall()`: non-streamed `message: {role: "assistant", content:
 *   null, tool_calls: [{id: "chatcmpl-tool-<hex>", type: "function", function: {name,
 *   arguments: "<json text>"}}]}` with finish "tool_calls"; streamed, after the role chunk, a
 *   delta `{tool_calls: [{id, type: "function", index: 0, function: {name}}]}`, then argument
 *   fragments `{tool_calls: [{index: 0, function: {arguments: "…"}}]}`, then a chunk with finish
 *   "tool_calls". `response_format` json_object answers `{"answer": <last user message>}`,
 *   json_schema an object filling the schema's properties (`fakeObjectFor`) — vLLM's guided
 *   decoding guarantees the same: JSON valid for the schema. Requests are recorded, so tests
 *   can check that tools, tool_choice and response_format were passed through.
 * - `POST /v1/embeddings`: vLLM's EmbeddingResponse (protocol.py): `{id: "embd-…", object:
 *   "list", created, model, data: [{index, object: "embedding", embedding: [floats]}], usage:
 *   {prompt_tokens, total_tokens, completion_tokens: 0}}`; `input` a string, strings or token
 *   arrays; vectors from `fakeEmbedding` (8 numbers, or `dimensions`); prompt tokens = words
 *   (token arrays: their length). `encoding_format` other than float is refused (the gateway
 *   must ask for floats).
 * - `GET /health` (empty 200) and `GET /v1/models`: both answer with `health`.
 * - `requiredApiKey`: when set, requests without `Authorization: Bearer <it>` get 401.
 * - `streamUsage = false`: ignores `stream_options.include_usage`, like servers without it.
 * - `reasoning`: when set, chat answers carry it as a reasoning parser does (`message.
 *   reasoning_content`; streamed, two `delta.reasoning_content` chunks before the content).
 * - `cachedPromptTokens`: when set, usage reports that many prompt tokens served from the prefix
 *   cache (`prompt_tokens_details: {cached_tokens}`, as vLLM with --enable-prompt-tokens-details).
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

interface CompletionsBody {
  model?: unknown;
  prompt?: unknown;
  messages?: unknown;
  max_tokens?: unknown;
  stop?: unknown;
  stream?: unknown;
  stream_options?: { include_usage?: unknown };
  tools?: unknown;
  tool_choice?: unknown;
  response_format?: { type?: string; json_schema?: { schema?: { properties?: Record<string, { type?: string }> } } };
}

type Endpoint = 'completions' | 'chat';

const PATHS: Record<string, Endpoint> = {
  '/v1/completions': 'completions',
  '/v1/chat/completions': 'chat',
};

export class FakeVllm extends FakeServer {
  requiredApiKey: string | null = null;
  streamUsage = true;
  cachedPromptTokens: number | null = null;
  reasoning: string | null = null;
  /** Where a chat stream puts the finish reason: see the file comment. */
  chatStyle: 'vllm' | 'openai' = 'vllm';
  readonly created = 1_700_000_000;

  static async start(): Promise<FakeVllm> {
    const fake = new FakeVllm();
    await fake.listen();
    return fake;
  }

  override reset(): void {
    super.reset();
    this.requiredApiKey = null;
    this.streamUsage = true;
    this.cachedPromptTokens = null;
    this.reasoning = null;
    this.chatStyle = 'vllm';
  }

  /** The message the `fail` mode sends: it leaks the URL and the key, to test sanitizing. */
  failMessage(req: RecordedRequest): string {
    const auth = String(req.headers.authorization ?? 'none');
    return `EngineCore encountered an issue.\u001b[31m\nupstream ${this.url}${req.path} auth=${auth}`;
  }

  protected async handle(req: RecordedRequest, res: ServerResponse, isClosed: () => boolean): Promise<void> {
    if (this.requiredApiKey && req.headers.authorization !== `Bearer ${this.requiredApiKey}`) {
      this.sendJson(res, 401, { error: 'Unauthorized' });
      return;
    }
    if (req.method === 'GET' && (req.path === '/health' || req.path === '/v1/models')) {
      if (this.health === 'hang') return;
      if (req.path === '/health') {
        res.writeHead(this.health, { 'content-length': 0 });
        res.end();
      } else {
        this.sendJson(res, this.health, {
          object: 'list',
          data: [{ id: 'fake', object: 'model' }],
        });
      }
      return;
    }
    if (req.method === 'POST' && req.path === '/v1/embeddings') {
      this.embeddings(req, res);
      return;
    }
    const endpoint = PATHS[req.path];
    if (req.method !== 'POST' || !endpoint) {
      this.sendJson(res, 404, { detail: 'Not Found' });
      return;
    }
    await this.completions(endpoint, req, req.body as CompletionsBody, res, isClosed);
  }

  private async completions(
    endpoint: Endpoint,
    req: RecordedRequest,
    body: CompletionsBody,
    res: ServerResponse,
    isClosed: () => boolean,
  ): Promise<void> {
    const stream = body.stream === true;
    if (this.mode === 'hang') return;
    if (this.mode === 'fail' || (this.mode === 'mid-stream-error' && !stream)) {
      this.sendJson(res, this.failStatus, this.errorBody(this.failMessage(req), this.failStatus));
      return;
    }
    if (this.mode === 'garbage') {
      const garbage = stream ? 'data: {"choices": [{"text": "unterminated\n\n' : '<html>oops</html>';
      res.writeHead(200, { 'content-type': stream ? 'text/event-stream' : 'application/json' });
      res.end(garbage);
      return;
    }
    const maxTokens = typeof body.max_tokens === 'number' ? body.max_tokens : 16;
    const stop = typeof body.stop === 'string' ? [body.stop] : (body.stop as string[] | undefined);
    let completion: FakeCompletion;
    if (endpoint === 'chat') {
      try {
        const messages = wireMessages(body.messages);
        const call = fakeToolCall(messages, wireTools(body.tools), body.tool_choice);
        if (call) {
          await this.toolCallAnswer(call, body, res, isClosed);
          return;
        }
        completion = fakeChatCompletion(messages, maxTokens, stop ?? []);
        const format = body.response_format;
        if (format?.type === 'json_object' || format?.type === 'json_schema') {
          const json = JSON.stringify(
            format.type === 'json_object'
              ? { answer: lastUserContent(messages) }
              : fakeObjectFor(format.json_schema?.schema ?? {}, lastUserContent(messages)),
          );
          completion = { ...completion, tokens: [json], text: json, finish: 'stop' };
        }
      } catch (err) {
        this.sendJson(res, 400, this.errorBody(`invalid messages: ${(err as Error).message}`, 400));
        return;
      }
    } else {
      completion = fakeCompletion(String(body.prompt), maxTokens, stop ?? []);
    }
    if (this.mode === 'flood') completion = floodOf(completion);
    const usage = {
      prompt_tokens: completion.promptTokens,
      total_tokens: completion.promptTokens + completion.tokens.length,
      completion_tokens: completion.tokens.length,
      ...(this.cachedPromptTokens === null
        ? {}
        : { prompt_tokens_details: { cached_tokens: Math.min(this.cachedPromptTokens, completion.promptTokens) } }),
    };
    const chat = endpoint === 'chat';
    const head = {
      id: chat ? 'chatcmpl-fake' : 'cmpl-fake',
      object: chat ? (stream ? 'chat.completion.chunk' : 'chat.completion') : 'text_completion',
      created: this.created,
      model: body.model,
    };
    const delayMs = this.mode === 'slow' || this.mode === 'flood' ? this.delayMs : 0;

    if (!stream) {
      if (delayMs > 0) await sleep(delayMs);
      if (isClosed()) return;
      const choice = chat
        ? {
            index: 0,
            message: {
              role: 'assistant',
              content: completion.text,
              tool_calls: [],
              ...(this.reasoning === null ? {} : { reasoning_content: this.reasoning }),
            },
            logprobs: null,
            finish_reason: completion.finish,
            stop_reason: completion.matched ?? null,
          }
        : {
            index: 0,
            text: completion.text,
            logprobs: null,
            finish_reason: completion.finish,
            stop_reason: completion.matched ?? null,
          };
      this.sendJson(res, 200, { ...head, choices: [choice], usage });
      return;
    }

    const openAiStyle = chat && this.chatStyle === 'openai';
    // vLLM names the matched stop string on the chunk that finishes.
    const stopReason = (finish: string | null) => (finish === null ? null : (completion.matched ?? null));
    const tokens = completion.tokens.length > 0 || openAiStyle ? completion.tokens : [''];
    const events: unknown[] = tokens.map((text, i) => {
      const finish = i === tokens.length - 1 && !openAiStyle ? completion.finish : null;
      const choice = chat
        ? { index: 0, delta: { content: text }, logprobs: null, finish_reason: finish, stop_reason: stopReason(finish) }
        : { index: 0, text, logprobs: null, finish_reason: finish, stop_reason: stopReason(finish) };
      return openAiStyle ? { ...head, choices: [choice] } : { ...head, choices: [choice], usage: null };
    });
    let pieces: unknown[] = events;
    if (this.mode === 'mid-stream-error' || this.mode === 'truncated') {
      pieces = events.slice(0, this.afterChunks);
      if (this.mode === 'mid-stream-error') pieces.push(this.errorBody('Engine loop has died', 500));
    } else {
      if (openAiStyle) {
        const choice = { index: 0, delta: {}, logprobs: null, finish_reason: completion.finish };
        pieces = [...pieces, { ...head, choices: [choice] }];
      }
      if (body.stream_options?.include_usage === true && this.streamUsage) {
        pieces = [...pieces, { ...head, choices: [], usage }];
      }
    }
    if (chat) {
      const role = openAiStyle ? { role: 'assistant', content: '', refusal: null } : { role: 'assistant', content: '' };
      const first = { index: 0, delta: role, logprobs: null, finish_reason: null };
      const half = Math.ceil((this.reasoning ?? '').length / 2);
      const thinking = this.reasoning === null ? [] : [this.reasoning.slice(0, half), this.reasoning.slice(half)];
      const reasoningChunks = thinking.map((text) => ({
        ...head,
        choices: [{ index: 0, delta: { reasoning_content: text }, logprobs: null, finish_reason: null }],
      }));
      pieces = [{ ...head, choices: [first] }, ...reasoningChunks, ...pieces];
    }
    const sse = pieces.map((piece) => `data: ${JSON.stringify(piece)}\n\n`);
    if (this.mode !== 'truncated') sse.push('data: [DONE]\n\n');
    await this.streamOut(res, 'text/event-stream; charset=utf-8', sse, delayMs, isClosed);
  }

  private embeddings(req: RecordedRequest, res: ServerResponse): void {
    const body = req.body as { model?: unknown; input?: unknown; dimensions?: unknown; encoding_format?: unknown };
    if (this.mode === 'fail') {
      this.sendJson(res, this.failStatus, this.errorBody(this.failMessage(req), this.failStatus));
      return;
    }
    if (body.encoding_format !== undefined && body.encoding_format !== 'float') {
      this.sendJson(res, 400, this.errorBody('this fake only sends floats', 400));
      return;
    }
    const input = body.input;
    const inputs: unknown[] =
      typeof input === 'string'
        ? [input]
        : Array.isArray(input) && typeof input[0] === 'number'
          ? [input]
          : (input as unknown[]);
    const size = typeof body.dimensions === 'number' ? body.dimensions : 8;
    const promptTokens = inputs.reduce<number>(
      (sum, item) =>
        sum + (typeof item === 'string' ? item.split(/\s+/).filter(Boolean).length : (item as unknown[]).length),
      0,
    );
    this.sendJson(res, 200, {
      id: 'embd-fake',
      object: 'list',
      created: this.created,
      model: body.model,
      data: inputs.map((item, index) => ({ index, object: 'embedding', embedding: fakeEmbedding(item, size) })),
      usage: {
        prompt_tokens: promptTokens,
        total_tokens: promptTokens,
        completion_tokens: 0,
        prompt_tokens_details: null,
      },
    });
  }

  /** A tool call in vLLM's wire format (see the file comment). */
  private async toolCallAnswer(
    call: { name: string; arguments: Record<string, unknown> },
    body: CompletionsBody,
    res: ServerResponse,
    isClosed: () => boolean,
  ): Promise<void> {
    const id = `chatcmpl-tool-${Buffer.from(call.name).toString('hex').padEnd(32, '0').slice(0, 32)}`;
    const args = JSON.stringify(call.arguments);
    const fragments = args.match(/.{1,5}/gs) ?? [];
    const usage = { prompt_tokens: 12, total_tokens: 12 + fragments.length, completion_tokens: fragments.length };
    const head = { id: 'chatcmpl-fake', created: this.created, model: body.model };
    if (body.stream !== true) {
      const message = {
        role: 'assistant',
        content: null,
        tool_calls: [{ id, type: 'function', function: { name: call.name, arguments: args } }],
      };
      const choice = { index: 0, message, logprobs: null, finish_reason: 'tool_calls', stop_reason: null };
      this.sendJson(res, 200, { ...head, object: 'chat.completion', choices: [choice], usage });
      return;
    }
    const chunk = (delta: unknown, finish: string | null = null) => ({
      ...head,
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
    const pieces: unknown[] = [
      chunk({ role: 'assistant', content: '' }),
      chunk({ tool_calls: [{ id, type: 'function', index: 0, function: { name: call.name } }] }),
      ...fragments.map((fragment) => chunk({ tool_calls: [{ index: 0, function: { arguments: fragment } }] })),
      chunk({}, 'tool_calls'),
    ];
    if (body.stream_options?.include_usage === true)
      pieces.push({ ...head, object: 'chat.completion.chunk', choices: [], usage });
    const sse = [...pieces.map((piece) => `data: ${JSON.stringify(piece)}\n\n`), 'data: [DONE]\n\n'];
    await this.streamOut(res, 'text/event-stream; charset=utf-8', sse, 0, isClosed);
  }

  private errorBody(message: string, code: number): unknown {
    const type = code >= 500 ? 'InternalServerError' : 'BadRequestError';
    return { error: { message, type, param: null, code } };
  }
}
