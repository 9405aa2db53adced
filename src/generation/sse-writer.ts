/**
 * Server-sent events on an Express response: `data: <json>` events and the final
 * `data: [DONE]`. Headers go out with the first event, so an error found before it can still
 * be an ordinary JSON error response. Writes wait for the socket to drain (slow clients do
 * not make the server buffer a whole generation).
 */
import { once } from 'node:events';
import type { Response } from 'express';

export class SseWriter {
  private started = false;

  constructor(private readonly res: Response) {}

  get hasStarted(): boolean {
    return this.started;
  }

  async event(payload: unknown): Promise<void> {
    await this.write(`data: ${JSON.stringify(payload)}\n\n`);
  }

  async done(): Promise<void> {
    await this.write('data: [DONE]\n\n');
    this.res.end();
  }

  private async write(text: string): Promise<void> {
    if (this.res.destroyed || this.res.writableEnded) return;
    if (!this.started) {
      this.started = true;
      this.res.status(200);
      this.res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
      this.res.setHeader('Cache-Control', 'no-cache, no-transform');
      this.res.setHeader('X-Accel-Buffering', 'no'); // no proxy buffering (nginx)
      this.res.flushHeaders();
    }
    if (!this.res.write(text)) {
      await Promise.race([once(this.res, 'drain'), once(this.res, 'close')]);
    }
  }
}
