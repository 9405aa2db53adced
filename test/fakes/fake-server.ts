/**
 * Base of the fake upstream servers: a real node:http server on 127.0.0.1 (random port) that
 * records what it received so tests can assert on the wire:
 * - `requests`: method, path, headers and parsed JSON body of every request;
 * - `connections`: TCP connections accepted (keep-alive reuse shows as 1 for many requests);
 * - `aborted`: requests whose client went away before the response was finished, with the time.
 * Subclasses implement `handle()`.
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body; the raw text when it is not JSON; undefined when empty. */
  body: unknown;
}

export interface AbortedRequest {
  path: string;
  at: number;
}

/** Text deterministically derived from a prompt, honouring max tokens and stop strings. */
export interface FakeCompletion {
  /** One entry per token, each with its leading space. */
  tokens: string[];
  text: string;
  finish: 'stop' | 'length';
  /** The stop string that cut it (vLLM reports it as the choice's `stop_reason`). */
  matched?: string | null;
  promptTokens: number;
}

// Includes multi-byte characters so UTF-8 handling is exercised end to end.
const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'café', 'naïve', '東京', 'omega', 'zeta', 'eta'];

/** 5..10 tokens picked by a hash of the prompt; cut at maxTokens (length) or a stop (stop). */
export function fakeCompletion(prompt: string, maxTokens: number, stop: string[] = []): FakeCompletion {
  let hash = 2166136261;
  for (const ch of prompt) hash = Math.imul(hash ^ (ch.codePointAt(0) ?? 0), 16777619) >>> 0;
  const natural = 5 + (hash % 6);
  let tokens = Array.from({ length: natural }, (_, i) => ` ${WORDS[(hash + i * 7) % WORDS.length]}`);
  let finish: FakeCompletion['finish'] = 'stop';
  if (tokens.length > maxTokens) {
    tokens = tokens.slice(0, maxTokens);
    finish = 'length';
  }
  let text = tokens.join('');
  const full = text;
  const at = Math.min(...stop.map((s) => full.indexOf(s)).filter((i) => i >= 0), Infinity);
  let matched: string | null = null;
  if (at !== Infinity) {
    text = text.slice(0, at);
    tokens = text.match(/\s*\S+|\s+$/g) ?? [];
    finish = 'stop';
    matched = stop.find((s) => full.indexOf(s) === at) ?? null;
  }
  return { tokens, text, finish, matched, promptTokens: prompt.split(/\s+/).filter(Boolean).length };
}

/** A completion of FLOOD_DELTAS tokens, whatever was asked (mode `flood`). */
export function floodOf(completion: FakeCompletion): FakeCompletion {
  const tokens = Array.from({ length: FLOOD_DELTAS }, (_, i) => ` t${i}`);
  return { ...completion, tokens, text: tokens.join(''), finish: 'length' };
}

/** A chat message as the fakes receive it on the wire. */
export interface FakeChatMessage {
  role: string;
  content: string;
}

/** The content of the last user message ('' when there is none). */
export function lastUserContent(messages: FakeChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i -= 1) {
    if (messages[i].role === 'user') return messages[i].content;
  }
  return '';
}

/**
 * The fakes' chat answer: `fakeCompletion(<last user message>, …)`, with prompt tokens = the
 * words of all message contents.
 */
export function fakeChatCompletion(
  messages: FakeChatMessage[],
  maxTokens: number,
  stop: string[] = [],
): FakeCompletion {
  const completion = fakeCompletion(lastUserContent(messages), maxTokens, stop);
  const promptTokens = messages.map((m) => m.content.split(/\s+/).filter(Boolean).length).reduce((a, b) => a + b, 0);
  return { ...completion, promptTokens };
}

/**
 * Parses the `messages` of a chat request body; throws on anything else. An assistant message
 * with `tool_calls` may have null content (read as '').
 */
export function wireMessages(value: unknown): FakeChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) throw new Error('messages must be a non-empty array');
  return value.map((m: unknown) => {
    const { role, content, tool_calls } = (m ?? {}) as { role?: unknown; content?: unknown; tool_calls?: unknown };
    if (typeof role !== 'string') throw new Error('bad message');
    if (content === null && Array.isArray(tool_calls)) return { role, content: '' };
    if (typeof content !== 'string') throw new Error('bad message');
    return { role, content };
  });
}

/** The fakes' embedding of one input: `size` numbers derived from a hash of it (equal inputs, equal vectors). */
export function fakeEmbedding(input: unknown, size = 8): number[] {
  let hash = 2166136261;
  for (const ch of JSON.stringify(input)) hash = Math.imul(hash ^ (ch.codePointAt(0) ?? 0), 16777619) >>> 0;
  return Array.from({ length: size }, (_, i) => (((hash >>> (i % 24)) % 1000) - 500) / 1000 + i / 1024);
}

/** A function tool as the fakes receive it (`{type: "function", function: {...}}`). */
export interface FakeTool {
  name: string;
  parameters: { properties?: Record<string, { type?: string }> };
}

/** The `tools` of a request body (OpenAI's and Ollama's shape are the same). */
export function wireTools(value: unknown): FakeTool[] {
  if (!Array.isArray(value)) return [];
  return value.map((tool: { function?: { name?: unknown; parameters?: unknown } }) => ({
    name: String(tool.function?.name),
    parameters: (tool.function?.parameters ?? {}) as FakeTool['parameters'],
  }));
}

/** A value for each property of a schema by its type: strings get `text`. */
export function fakeObjectFor(schema: FakeTool['parameters'], text: string): Record<string, unknown> {
  const values: Record<string, unknown> = { string: text, number: 21.5, integer: 21, boolean: true, array: [] };
  return Object.fromEntries(
    Object.entries(schema.properties ?? {}).map(([name, property]) => [
      name,
      values[property.type ?? 'string'] ?? null,
    ]),
  );
}

/**
 * The fakes' tool decision: the tool a model would call, or null for a text answer. A named
 * tool_choice picks that tool, `required` the first; `auto` calls the first tool unless the
 * conversation ends with a tool result (so a round trip ends with text); `none` never calls.
 * The arguments fill the tool's parameters with the last user message.
 */
export function fakeToolCall(
  messages: FakeChatMessage[],
  tools: FakeTool[],
  toolChoice: unknown,
): { name: string; arguments: Record<string, unknown> } | null {
  if (tools.length === 0 || toolChoice === 'none') return null;
  const named = (toolChoice as { function?: { name?: string } } | undefined)?.function?.name;
  const lastIsResult = messages[messages.length - 1]?.role === 'tool';
  if (!named && toolChoice !== 'required' && lastIsResult) return null;
  const tool = tools.find((t) => t.name === named) ?? tools[0];
  return { name: tool.name, arguments: fakeObjectFor(tool.parameters, lastUserContent(messages)) };
}

/**
 * - normal: answers correctly;
 * - slow: waits `delayMs` before each streamed chunk (non-streamed: before the answer);
 * - hang: accepts the request and never answers;
 * - fail: HTTP `status` (500) with the server's usual error body;
 * - garbage: HTTP 200 with a body that is not JSON;
 * - mid-stream-error: streams `afterChunks` chunks, then the server's in-stream error
 *   (non-streamed requests get the `fail` answer);
 * - truncated: streams `afterChunks` chunks, then ends the response cleanly without the
 *   final chunk(s) (non-streamed requests are answered normally);
 * - flood: streams far more deltas than the request's max tokens (FLOOD_DELTAS), then ends
 *   normally (a broken or hostile upstream).
 * `lingerAfterEnd`: a stream's final event is sent but the response never ends (an upstream
 * that keeps the connection after `[DONE]`).
 */
export type FakeMode = 'normal' | 'slow' | 'hang' | 'fail' | 'garbage' | 'mid-stream-error' | 'truncated' | 'flood';

/** Deltas a `flood` stream sends, whatever the request asked for. */
export const FLOOD_DELTAS = 5000;

export interface FakeModeOptions {
  delayMs?: number;
  afterChunks?: number;
  status?: number;
}

/** Status of the readiness endpoint, or 'hang' to never answer it. */
export type FakeHealth = number | 'hang';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves on the next event-loop turn. undici hands a socket back to its pool one turn after a
 * response completes (on purpose: it checks the server did not close it), so sequential
 * requests that should share a keep-alive connection wait one turn in between.
 */
export function nextLoopTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A URL on which nothing listens: binds a port, then frees it. */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** Polls `condition` until it holds; rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(5);
  }
}

export abstract class FakeServer {
  readonly requests: RecordedRequest[] = [];
  readonly aborted: AbortedRequest[] = [];
  connections = 0;
  /** Requests being answered now, and the most there ever were at once (since reset). */
  inFlight = 0;
  peakInFlight = 0;
  url = '';
  mode: FakeMode = 'normal';
  delayMs = 50;
  afterChunks = 2;
  failStatus = 500;
  health: FakeHealth = 200;
  lingerAfterEnd = false;
  /** false: keep only the latest request (benchmarks send millions). */
  recordRequests = true;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  protected constructor() {
    this.server = createServer((req, res) => void this.dispatch(req, res));
    this.server.on('connection', (socket: Socket) => {
      this.connections += 1;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  protected async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
  }

  setMode(mode: FakeMode, options: FakeModeOptions = {}): void {
    this.mode = mode;
    this.delayMs = options.delayMs ?? 50;
    this.afterChunks = options.afterChunks ?? 2;
    this.failStatus = options.status ?? 500;
  }

  setHealth(health: FakeHealth): void {
    this.health = health;
  }

  /** Back to normal mode and healthy; forgets requests, connections and aborts. */
  reset(): void {
    this.setMode('normal');
    this.health = 200;
    this.lingerAfterEnd = false;
    this.requests.length = 0;
    this.aborted.length = 0;
    this.connections = 0;
    this.peakInFlight = this.inFlight;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The message the `fail` mode sends: it leaks the URL and the key, to test sanitizing. */
  abstract failMessage(req: RecordedRequest): string;

  protected abstract handle(req: RecordedRequest, res: ServerResponse, isClosed: () => boolean): Promise<void>;

  protected sendJson(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  /** Writes a 200 streamed response piece by piece, waiting `delayMs` before each piece. */
  protected async streamOut(
    res: ServerResponse,
    contentType: string,
    pieces: string[],
    delayMs: number,
    isClosed: () => boolean,
  ): Promise<void> {
    res.writeHead(200, { 'content-type': contentType });
    res.flushHeaders();
    for (const piece of pieces) {
      if (delayMs > 0) await sleep(delayMs);
      if (isClosed()) return;
      res.write(piece);
    }
    if (!this.lingerAfterEnd) res.end();
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text === '' ? undefined : text;
    try {
      body = text === '' ? undefined : (JSON.parse(text) as unknown);
    } catch {
      // keep the raw text
    }
    const path = req.url ?? '/';
    if (!this.recordRequests) this.requests.length = 0;
    this.requests.push({ method: req.method ?? 'GET', path, headers: req.headers, body });
    let closed = false;
    this.inFlight += 1;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
    res.on('close', () => {
      this.inFlight -= 1;
      closed = true;
      if (!res.writableEnded) this.aborted.push({ path, at: Date.now() });
    });
    await this.handle(this.requests[this.requests.length - 1], res, () => closed);
  }
}
