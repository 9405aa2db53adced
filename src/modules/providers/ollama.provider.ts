/**
 * Ollama's native API: `POST /api/generate`, `POST /api/chat` for chat requests
 * (`params.messages`, see provider.types.ts), readiness `GET /api/tags`.
 *
 * Request decisions:
 * - `raw: true`: our API is a raw completion endpoint, so the prompt goes to the model as is.
 *   Without it Ollama wraps the prompt in the model's chat template (and system prompt).
 * - `stream` is always sent explicitly: Ollama streams (NDJSON) unless told `stream: false`.
 * - `options`: `num_predict` (max new tokens), `temperature`, `top_p`, `top_k`, `stop` (omitted
 *   when empty), `seed` (omitted when null). `top_k` is always sent: omitting it would apply the
 *   model's default (40), not "disabled"; Ollama's samplers treat `top_k <= 0` as disabled, so our
 *   0 is sent as 0.
 * - Chat: `messages` (`[{role, content}]`, in order) instead of `prompt`, and no `raw`: the
 *   point of a chat request is that Ollama applies the model's chat template. `stream` and
 *   `options` as above.
 *
 * - Tools: `tools` as `[{type: "function", function: {name, description, parameters}}]`. Ollama
 *   has no tool_choice: `none` sends no tools, a named function sends only that tool, `auto` and
 *   `required` send them all (Ollama cannot force a call). Assistant messages carry
 *   `tool_calls: [{function: {name, arguments}}]` with the arguments as a JSON object (Ollama's
 *   shape; arguments that are not a JSON object are sent as `{}`), tool messages `tool_name`
 *   (looked up from the call they answer).
 * - Response format: `format` is `"json"` for json_object, the schema itself for json_schema.
 *
 * - Embeddings: `POST /api/embed` with `model`, `input` (the strings) and `dimensions` when
 *   asked; answer `{embeddings: [[…], …], prompt_eval_count}` (ollama docs/api.md "Generate
 *   Embeddings"). Ollama takes text only: token-id input is a 400 naming `input`.
 *
 * Response: NDJSON lines `{"response": "...", "done": false}`, then a final line with
 * `done: true`, `done_reason` ("stop" | "length" | ...; "length" → length, else stop),
 * `prompt_eval_count` (absent when the prompt was cached → 0) and `eval_count` (absent → 0:
 * Ollama omits zero counts). An `{"error": "..."}` line, even inside a 200 stream, is a
 * BackendResponseError. The non-streamed answer is the final line alone with the full `response`.
 * Chat answers have the same shape with the text in `message.content` instead of `response`
 * (`{"message": {"role": "assistant", "content": "..."}, "done": false}`; the final streamed
 * line carries an empty content). Tool calls come as `message.tool_calls`
 * `[{id?, function: {index?, name, arguments: {…}}}]`, whole (Ollama does not stream their
 * arguments), on any line: they are collected in order, given an id when Ollama gives none, and
 * their arguments serialized to JSON text; an answer with calls finishes "tool_calls" (Ollama
 * itself says "stop").
 */
import type { ModelConfig } from '../../contracts/model-config';
import { BackendResponseError } from '../../contracts/backend-errors';
import { chatMessagesOf, promptText } from '../../contracts/generation';
import { completeUsage } from '../../contracts/token-estimate';
import type {
  EmbeddingParams,
  EmbeddingResult,
  FinishReason,
  GenerationParams,
  GenerationResult,
  StreamChunk,
  TokenUsage,
  ToolCall,
} from '../../contracts/generation';
import { messageToolCalls } from './tool-calls';
import { UnsupportedRequestError } from '../../contracts/backend-errors';
import type { CallHooks, LlmProvider } from './provider.types';
import { releaseAfterEnd, UpstreamHttp } from './upstream-http';
import {
  capBytes,
  embeddingVector,
  ENDED_EARLY_MESSAGE,
  isRecord,
  ndjsonValues,
  streamLimits,
  tokenCount,
  TOO_MUCH_OUTPUT_MESSAGE,
  unparseable,
} from './upstream-body';
import type { JsonRecord } from './upstream-body';
import { wireMessages, structureFields, endpointFor } from './ollama-wire';

/** `llama3` means `llama3:latest`; a tag is what follows the last `:` after the last `/`. */
export function normalizeOllamaTag(name: string): string {
  const lastSegment = name.slice(name.lastIndexOf('/') + 1);
  return lastSegment.includes(':') ? name : `${name}:latest`;
}

/** A count Ollama may leave out (prompt_eval_count is absent when the whole prompt was cached). */
function optionalCount(value: unknown): number | null {
  return value === undefined || value === null ? null : tokenCount(value);
}

/** A result with its calls, if any: an answer with calls finishes "tool_calls". */
function withToolCalls<T extends { finishReason: FinishReason }>(
  result: T,
  toolCalls: ToolCall[],
): T & { toolCalls?: ToolCall[] } {
  return toolCalls.length > 0 ? { ...result, finishReason: 'tool_calls', toolCalls } : result;
}

export class OllamaProvider implements LlmProvider {
  readonly kind = 'ollama' as const;
  readonly upstreamLabel: string;
  private readonly http: UpstreamHttp;

  constructor(
    private readonly model: ModelConfig,
    baseUrl: string,
  ) {
    this.http = new UpstreamHttp(baseUrl, { apiKey: model.apiKey });
    this.upstreamLabel = this.http.label;
  }

  async generate(params: GenerationParams, signal: AbortSignal, hooks?: CallHooks): Promise<GenerationResult> {
    const { endpoint, res } = await this.send(params, false, signal, hooks);
    const line = this.checkLine(await res.json());
    const output = endpoint.text(line);
    if (line.done !== true || output === undefined) throw unparseable();
    const calls = messageToolCalls(line.message);
    const produced = { text: [output, ...calls.map((call) => call.arguments)].join(' ').trim() };
    return withToolCalls({ output, ...this.final(line, params, produced) }, calls);
  }

  async *stream(params: GenerationParams, signal: AbortSignal, hooks?: CallHooks): AsyncGenerator<StreamChunk> {
    const { endpoint, res } = await this.send(params, true, signal, hooks);
    const limits = streamLimits(params.maxNewTokens);
    const lines = ndjsonValues(capBytes(res.body, limits.maxBytes))[Symbol.asyncIterator]();
    let done: { finishReason: FinishReason; usage: TokenUsage } | null = null;
    let deltas = 0;
    const toolCalls: ToolCall[] = [];
    try {
      for (let next = await lines.next(); !next.done; next = await lines.next()) {
        const line = this.checkLine(next.value);
        const text = endpoint.text(line);
        if (text) {
          if (++deltas > limits.maxDeltas) throw new BackendResponseError(TOO_MUCH_OUTPUT_MESSAGE);
          yield { type: 'delta', text };
        }
        toolCalls.push(...messageToolCalls(line.message));
        if (toolCalls.length > limits.maxDeltas) throw new BackendResponseError(TOO_MUCH_OUTPUT_MESSAGE);
        if (line.done === true) {
          done = this.final(line, params, { text: '', deltas: deltas + toolCalls.length });
          releaseAfterEnd(res, lines);
          break;
        }
      }
    } finally {
      if (!done) res.cancel(); // an error, or the consumer stopped: nothing more is read
    }
    if (!done) throw new BackendResponseError(ENDED_EARLY_MESSAGE);
    yield { type: 'done', ...withToolCalls(done, toolCalls) };
  }

  async embed(params: EmbeddingParams, signal: AbortSignal, hooks?: CallHooks): Promise<EmbeddingResult> {
    if (params.input.some((item) => typeof item !== 'string')) {
      throw new UnsupportedRequestError('Ollama embeds text only, not token ids', 'input');
    }
    const json: JsonRecord = { model: this.model.upstreamModel, input: params.input };
    if (params.dimensions !== null) json.dimensions = params.dimensions;
    const res = await this.http.request({ method: 'POST', path: '/api/embed', json, signal, onSent: hooks?.accepted });
    const payload = this.checkLine(await res.json());
    const { embeddings } = payload;
    if (!Array.isArray(embeddings) || embeddings.length !== params.input.length) throw unparseable();
    const reported = { promptTokens: optionalCount(payload.prompt_eval_count), completionTokens: 0 };
    const { promptTokens } = completeUsage(reported, (params.input as string[]).join(' '), { text: '' });
    return { vectors: (embeddings as unknown[]).map(embeddingVector), usage: { promptTokens, completionTokens: 0 } };
  }

  /** Ready when `/api/tags` lists the model (a tag-less name matches `:latest`). */
  async checkReady(signal: AbortSignal): Promise<void> {
    const res = await this.http.request({ method: 'GET', path: '/api/tags', signal });
    const payload = await res.json();
    if (!isRecord(payload) || !Array.isArray(payload.models)) throw unparseable();
    const wanted = normalizeOllamaTag(this.model.upstreamModel);
    const listed = (payload.models as unknown[]).some(
      (entry) =>
        isRecord(entry) &&
        [entry.name, entry.model].some((name) => typeof name === 'string' && normalizeOllamaTag(name) === wanted),
    );
    if (!listed) {
      throw new Error(`ollama model "${this.model.upstreamModel}" is not available (not pulled)`);
    }
  }

  close(): Promise<void> {
    return this.http.close();
  }

  /** The one place that picks the endpoint and posts the body, for generate() and stream(). */
  private async send(params: GenerationParams, stream: boolean, signal: AbortSignal, hooks?: CallHooks) {
    const endpoint = endpointFor(params);
    const json = this.requestBody(params, stream);
    const res = await this.http.request({ method: 'POST', path: endpoint.path, json, signal, onSent: hooks?.accepted });
    return { endpoint, res };
  }

  private requestBody(params: GenerationParams, stream: boolean): JsonRecord {
    const options: JsonRecord = {
      num_predict: params.maxNewTokens,
      temperature: params.temperature,
      top_p: params.topP,
      top_k: params.topK,
    };
    if (params.stop.length > 0) options.stop = params.stop;
    if (params.seed !== null) options.seed = params.seed;
    // Ollama's options take the penalties by OpenAI's names; it has no logit bias.
    if (params.extra?.presencePenalty !== undefined) options.presence_penalty = params.extra.presencePenalty;
    if (params.extra?.frequencyPenalty !== undefined) options.frequency_penalty = params.extra.frequencyPenalty;
    const messages = chatMessagesOf(params);
    if (messages) {
      return {
        model: this.model.upstreamModel,
        messages: wireMessages(messages),
        ...structureFields(params),
        stream,
        options,
      };
    }
    return {
      model: this.model.upstreamModel,
      prompt: params.prompt,
      raw: true,
      stream,
      options,
    };
  }

  /** A JSON object that is not an `{"error": ...}` line. */
  private checkLine(value: unknown): JsonRecord {
    if (!isRecord(value)) throw unparseable();
    if (value.error !== undefined && value.error !== null) throw this.http.upstreamError(value);
    return value;
  }

  /** The final line's finish and usage; counts Ollama left out are counted from what was produced. */
  private final(
    line: JsonRecord,
    params: GenerationParams,
    produced: { text: string; deltas?: number },
  ): { finishReason: FinishReason; usage: TokenUsage } {
    const reported = {
      promptTokens: optionalCount(line.prompt_eval_count),
      completionTokens: optionalCount(line.eval_count),
    };
    return {
      finishReason: line.done_reason === 'length' ? 'length' : 'stop',
      usage: completeUsage(reported, promptText(params), produced),
    };
  }
}
