/**
 * Providers for OpenAI-compatible servers: `POST /v1/completions`, and
 * `POST /v1/chat/completions` for chat requests (`params.messages`, see provider.types.ts).
 *
 * `OpenAiCompletionsProvider` holds the whole wire format; a `CompletionsDialect` lists the
 * few things that differ between servers, a `CompletionsEndpoint` the few things that differ
 * between the two endpoints. Two dialects exist:
 * - `openai` (this file): any OpenAI-compatible server (llama.cpp server, SGLang, TGI, OpenAI).
 *   `top_k` is not an OpenAI parameter and OpenAI rejects unknown parameters, so it is sent only
 *   when the request enables it (> 0); disabled top-k is expressed by omitting it. Readiness is
 *   `GET /v1/models`, since `/health` is not universal. Servers that ignore
 *   `stream_options.include_usage` are tolerated: see `strictStream`.
 * - `vllm` (vllm.provider.ts).
 *
 * Request: `model` (the model's upstream_model), `prompt` (completions) or `messages` (chat:
 * `[{role, content}]`, in order), `max_tokens`, `temperature`, `top_p`, `top_k` (per dialect),
 * `stop` (omitted when empty), `seed` (omitted when null), `stream`, and
 * `stream_options: {include_usage: true}` when streaming (only then: OpenAI rejects
 * stream_options on non-streamed requests). Chat requests send `max_tokens` too, not
 * `max_completion_tokens`: it is the field every OpenAI-compatible server understands (OpenAI's
 * own reasoning models are the exception: they reject it and want max_completion_tokens).
 *
 * Chat requests with tools or a response format pass them through in OpenAI's shapes, which vLLM
 * (tool parsers, guided decoding) and OpenAI-compatible servers take as they are: `tools`,
 * `tool_choice`, `parallel_tool_calls`, `response_format`; assistant messages carry their
 * `tool_calls` (content null when empty), tool messages their `tool_call_id`.
 *
 * Response: the text is `choices[0].text` (completions) or `choices[0].message.content` (chat;
 * null, as with a refusal, is ''); `message.tool_calls` are the calls (arguments kept as the
 * JSON text the server sent; an id the server left out is generated); `finish_reason` "length"
 * → length, "tool_calls" (or the legacy "function_call") → tool_calls, anything else ("stop",
 * null, "abort", "content_filter") → stop; usage from `usage`. Streamed calls come as
 * `delta.tool_calls` fragments `{index, id?, type?, function: {name?, arguments?}}` that are
 * joined per index (the name and id arrive once, the arguments in pieces) and handed over whole
 * with the final chunk. A stream is
 * `data: {...}` events with `choices[0].text` or `choices[0].delta.content` deltas (a chat
 * stream starts with a role-only delta, which yields nothing; empty deltas are skipped), the
 * finish reason on the chunk that carries it, a final chunk with `usage` (and empty `choices`),
 * then `data: [DONE]`. `{"error": ...}` events, or older vLLM's `{"object": "error", ...}`,
 * become BackendResponseError.
 *
 * Embeddings: `POST /v1/embeddings` with `model`, `input` (the strings, or token-id arrays as
 * vLLM and OpenAI take them), `encoding_format: "float"` (the gateway encodes base64 itself, so
 * the cache holds one form) and `dimensions` when asked; the answer's `data[].embedding` are put
 * in `index` order, `usage.prompt_tokens` is the usage.
 *
 * A count the server leaves out (a stream without a usage chunk, a body without `usage`) is
 * counted by the gateway (contracts/token-estimate.ts): never zero for a non-empty prompt or output.
 */
import type { ModelConfig } from '../../contracts/model-config';
import { BackendResponseError } from '../../contracts/backend-errors';
import type {
  EmbeddingParams,
  EmbeddingResult,
  FinishReason,
  GenerationParams,
  GenerationResult,
  StreamChunk,
} from '../../contracts/generation';
import { promptText } from '../../contracts/generation';
import { completeUsage, type ReportedUsage } from '../../contracts/token-estimate';
import { messageToolCalls, ToolCallAssembler } from './tool-calls';
import type { CallHooks, LlmProvider } from './provider.types';
import { releaseAfterEnd, UpstreamHttp } from './upstream-http';
import {
  capBytes,
  streamLimits,
  TOO_MUCH_OUTPUT_MESSAGE,
  ENDED_EARLY_MESSAGE,
  embeddingVector,
  isRecord,
  parseJson,
  sseData,
  unparseable,
} from './upstream-body';
import type { JsonRecord } from './upstream-body';
import {
  CompletionsDialect,
  OPENAI_DIALECT,
  CompletionsEndpoint,
  CHAT_ENDPOINT,
  extraSamplingFields,
  matchedStop,
  reasoningText,
  endpointFor,
  mapFinishReason,
  parseUsage,
  isErrorPayload,
  firstChoice,
} from './openai-wire';

export class OpenAiCompletionsProvider implements LlmProvider {
  readonly kind: CompletionsDialect['kind'];
  readonly upstreamLabel: string;
  protected readonly http: UpstreamHttp;

  constructor(
    protected readonly model: ModelConfig,
    baseUrl: string,
    private readonly dialect: CompletionsDialect,
  ) {
    this.kind = dialect.kind;
    this.http = new UpstreamHttp(baseUrl, { apiKey: model.apiKey });
    this.upstreamLabel = this.http.label;
  }

  async generate(params: GenerationParams, signal: AbortSignal, hooks?: CallHooks): Promise<GenerationResult> {
    const { endpoint, res } = await this.send(params, false, signal, hooks);
    const payload = await res.json();
    if (!isRecord(payload)) throw unparseable();
    if (isErrorPayload(payload)) throw this.http.upstreamError(payload);
    const choice = firstChoice(payload);
    if (!choice) throw unparseable();
    const toolCalls = endpoint === CHAT_ENDPOINT ? messageToolCalls(choice.message) : [];
    const output = endpoint.text(choice);
    const calledText = toolCalls.map((call) => call.arguments).join(' ');
    const reasoning = isRecord(choice.message) ? reasoningText(choice.message) : '';
    const stopSequence = matchedStop(choice);
    return {
      output,
      finishReason: mapFinishReason(choice.finish_reason),
      usage: completeUsage(parseUsage(payload.usage), promptText(params), { text: `${output} ${calledText}`.trim() }),
      ...(toolCalls.length > 0 ? { toolCalls } : {}),
      ...(reasoning !== '' ? { reasoning } : {}),
      ...(stopSequence !== null ? { stopSequence } : {}),
    };
  }

  async *stream(params: GenerationParams, signal: AbortSignal, hooks?: CallHooks): AsyncGenerator<StreamChunk> {
    const { endpoint, res } = await this.send(params, true, signal, hooks);
    const limits = streamLimits(params.maxNewTokens);
    const events = sseData(capBytes(res.body, limits.maxBytes))[Symbol.asyncIterator]();
    let finishReason: FinishReason | null = null;
    let usage: ReportedUsage | null = null;
    let sawDone = false;
    let textChunks = 0;
    let stopSequence: string | null = null;
    const calls = new ToolCallAssembler();
    try {
      for (let next = await events.next(); !next.done; next = await events.next()) {
        if (next.value === '[DONE]') {
          sawDone = true;
          releaseAfterEnd(res, events);
          break;
        }
        const payload = parseJson(next.value);
        if (!isRecord(payload)) throw unparseable();
        if (isErrorPayload(payload)) throw this.http.upstreamError(payload);
        const choice = firstChoice(payload);
        if (choice) {
          const text = endpoint.delta(choice);
          if (text !== '') {
            if (++textChunks + calls.fragments > limits.maxDeltas)
              throw new BackendResponseError(TOO_MUCH_OUTPUT_MESSAGE);
            yield { type: 'delta', text };
          }
          const thought = isRecord(choice.delta) ? reasoningText(choice.delta) : '';
          if (thought !== '') {
            if (++textChunks + calls.fragments > limits.maxDeltas)
              throw new BackendResponseError(TOO_MUCH_OUTPUT_MESSAGE);
            yield { type: 'reasoning', text: thought };
          }
          if (isRecord(choice.delta) && choice.delta.tool_calls != null) {
            calls.add(choice.delta.tool_calls);
            if (textChunks + calls.fragments > limits.maxDeltas)
              throw new BackendResponseError(TOO_MUCH_OUTPUT_MESSAGE);
          }
          if (choice.finish_reason != null) {
            finishReason = mapFinishReason(choice.finish_reason);
            stopSequence = matchedStop(choice);
          }
        }
        if (payload.usage != null) usage = parseUsage(payload.usage);
      }
    } finally {
      if (!sawDone) res.cancel(); // an error, or the consumer stopped: nothing more is read
    }

    if (this.dialect.strictStream) {
      if (!sawDone || !usage) throw new BackendResponseError(ENDED_EARLY_MESSAGE);
    } else if (!sawDone && !finishReason) {
      throw new BackendResponseError(ENDED_EARLY_MESSAGE);
    }
    const toolCalls = calls.result();
    yield {
      type: 'done',
      finishReason: finishReason ?? 'stop',
      usage: completeUsage(usage, promptText(params), { text: '', deltas: textChunks + calls.fragments }),
      ...(toolCalls.length > 0 ? { toolCalls } : {}),
      ...(stopSequence !== null ? { stopSequence } : {}),
    };
  }

  async embed(params: EmbeddingParams, signal: AbortSignal, hooks?: CallHooks): Promise<EmbeddingResult> {
    const json: JsonRecord = { model: this.model.upstreamModel, input: params.input, encoding_format: 'float' };
    if (params.dimensions !== null) json.dimensions = params.dimensions;
    const res = await this.http.request({
      method: 'POST',
      path: '/v1/embeddings',
      json,
      signal,
      onSent: hooks?.accepted,
    });
    const payload = await res.json();
    if (!isRecord(payload)) throw unparseable();
    if (isErrorPayload(payload)) throw this.http.upstreamError(payload);
    if (!Array.isArray(payload.data) || payload.data.length !== params.input.length) throw unparseable();
    const vectors: number[][] = new Array<number[]>(params.input.length);
    for (const [position, item] of (payload.data as unknown[]).entries()) {
      if (!isRecord(item)) throw unparseable();
      const index = item.index ?? position;
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= vectors.length) {
        throw unparseable();
      }
      vectors[index] = embeddingVector(item.embedding);
    }
    if (vectors.some((vector) => vector === undefined)) throw unparseable();
    const inputText = params.input.map((item) => (typeof item === 'string' ? item : item.join(' '))).join(' ');
    const { promptTokens } = completeUsage(parseUsage(payload.usage), inputText, { text: '' });
    return { vectors, usage: { promptTokens, completionTokens: 0 } };
  }

  async checkReady(signal: AbortSignal): Promise<void> {
    const res = await this.http.request({ method: 'GET', path: this.dialect.readyPath, signal });
    await res.dump();
  }

  close(): Promise<void> {
    return this.http.close();
  }

  /** The one place that picks the endpoint and posts the body, for generate() and stream(). */
  private async send(params: GenerationParams, stream: boolean, signal: AbortSignal, hooks?: CallHooks) {
    const endpoint = endpointFor(params);
    const json = this.requestBody(endpoint, params, stream);
    const res = await this.http.request({ method: 'POST', path: endpoint.path, json, signal, onSent: hooks?.accepted });
    return { endpoint, res };
  }

  private requestBody(endpoint: CompletionsEndpoint, params: GenerationParams, stream: boolean): JsonRecord {
    const body: JsonRecord = {
      model: this.model.upstreamModel,
      ...endpoint.input(params),
      max_tokens: params.maxNewTokens,
      temperature: params.temperature,
      top_p: params.topP,
      ...extraSamplingFields(params, endpoint === CHAT_ENDPOINT),
    };
    const topK = this.dialect.topK(params.topK);
    if (topK !== undefined) body.top_k = topK;
    if (params.stop.length > 0) body.stop = params.stop;
    if (params.seed !== null) body.seed = params.seed;
    body.stream = stream;
    if (stream) body.stream_options = { include_usage: true };
    return body;
  }
}

/** Any OpenAI-compatible completions server. */
export class OpenAiProvider extends OpenAiCompletionsProvider {
  constructor(model: ModelConfig, baseUrl: string) {
    super(model, baseUrl, OPENAI_DIALECT);
  }
}
