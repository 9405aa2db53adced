/**
 * Server-sent events on an Express response: `data: <json>` events and the final
 * `data: [DONE]`. Headers go out with the first event, so an error found before it can still
 * be an ordinary JSON error response. Events are written one at a time: when the socket's
 * buffer is full, later events wait (in order) for it to drain, with a single pair of
 * listeners. A generation is not slowed down for a slow reader — it may be shared by several
 * clients — so its events queue here until the reader catches up or leaves.
 */
import type { Response } from 'express';

export class SseWriter {
  /** An event was queued: from now on the response is this stream (errors become events). */
  private started = false;
  private headersWritten = false;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly res: Response) {}

  get hasStarted(): boolean {
    return this.started;
  }

  event(payload: unknown): Promise<void> {
    return this.enqueue(`data: ${JSON.stringify(payload)}\n\n`);
  }

  async done(): Promise<void> {
    await this.enqueue('data: [DONE]\n\n');
    this.res.end();
  }

  private enqueue(text: string): Promise<void> {
    this.started = true;
    // A failed write (the socket broke) must not stop the events queued after it from settling.
    this.queue = this.queue.then(() => this.write(text)).catch(() => undefined);
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

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }
}
