/**
 * Server-sent events on an Express response: `data: <json>` events (with an `event:` name when
 * the format names them) and the final `data: [DONE]` (when the format has one). Headers go out with the first event, so an error found before it can still
 * be an ordinary JSON error response. Events queued in the same turn of the event loop (the
 * deltas parsed from one upstream read) go out in one write: one syscall and one chunk, not one
 * per token. When the socket's buffer is full, later events wait (in order) for it to drain,
 * with a single pair of listeners. A generation is not slowed down for a slow reader — it may
 * be shared by several clients — so its events queue here until the reader catches up or leaves.
 *
 * Two bounds keep a stream from holding the server forever or being cut by a proxy:
 * - a reader that takes nothing for `stallTimeoutMs` is disconnected (the request then ends as
 *   a client cut: its generation is aborted unless shared, and it is billed as a cut);
 * - while nothing is sent for `heartbeatMs` (queueing, waiting for another replica's answer, a
 *   slow first token) an SSE comment goes out, so proxies with idle timeouts keep the stream.
 */
import type { Response } from 'express';

export interface SseTimings {
  stallTimeoutMs: number;
  heartbeatMs: number;
}

const HEARTBEAT = ': keep-alive\n\n';

/** After the I/O callbacks of this turn of the event loop: every event they produce is queued by then. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class SseWriter {
  /** An event was queued: from now on the response is this stream (errors become events). */
  private started = false;
  private headersWritten = false;
  private queue: Promise<void> = Promise.resolve();
  /** Events queued since the last write began, and whether a write of them is scheduled. */
  private pending: string[] = [];
  private flushScheduled = false;
  private lastWriteAt = Date.now();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly res: Response,
    private readonly timings: SseTimings,
  ) {
    this.heartbeat = setInterval(() => this.beat(), timings.heartbeatMs);
    this.heartbeat.unref();
    res.once('close', () => clearInterval(this.heartbeat));
  }

  get hasStarted(): boolean {
    return this.started;
  }

  /** `name`: an `event:` line before the data (typed streams name every event). */
  event(payload: unknown, name?: string): Promise<void> {
    const head = name === undefined ? '' : `event: ${name}\n`;
    return this.enqueue(`${head}data: ${JSON.stringify(payload)}\n\n`);
  }

  /** Ends the stream, after `data: [DONE]` unless `marker` is false (typed streams have none). */
  async done(marker = true): Promise<void> {
    if (marker) await this.enqueue('data: [DONE]\n\n');
    clearInterval(this.heartbeat);
    this.res.end();
  }

  private beat(): void {
    if (Date.now() - this.lastWriteAt >= this.timings.heartbeatMs) void this.enqueue(HEARTBEAT);
  }

  /** Resolves once `text` is written (or the socket is gone). */
  private enqueue(text: string): Promise<void> {
    this.started = true;
    this.lastWriteAt = Date.now();
    this.pending.push(text);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // A failed write (the socket broke) must not stop the events queued after it from settling.
      this.queue = this.queue
        .then(nextTurn)
        .then(() => {
          this.flushScheduled = false;
          const batch = this.pending.length === 1 ? this.pending[0] : this.pending.join('');
          this.pending = [];
          return this.write(batch);
        })
        .catch(() => undefined);
    }
    return this.queue;
  }

  private async write(text: string): Promise<void> {
    if (this.res.destroyed || this.res.writableEnded) return;
    if (!this.headersWritten) {
      this.headersWritten = true;
      this.res.status(200);
      this.res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
      this.res.setHeader('Cache-Control', 'no-cache, no-transform');
      this.res.setHeader('X-Accel-Buffering', 'no'); // no proxy buffering (nginx)
      this.res.flushHeaders();
    }
    if (!this.res.write(text)) await this.drained();
  }

  /** Resolves when the socket drains or closes; a reader stalled past the bound is disconnected. */
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const stall = setTimeout(() => this.res.destroy(), this.timings.stallTimeoutMs);
      const done = () => {
        clearTimeout(stall);
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }
}
