/**
 * A streamed answer in some AnswerFormat: deltas as they come, then the closing events and
 * `data: [DONE]`; an error after the first byte becomes an error event, then `[DONE]`.
 */
import type { Response } from 'express';
import type { AppError } from '../../contracts/app-error';
import { errorBody } from '../errors/error-body';
import type { Answer, AnswerFormat, StreamState } from './answer-format';
import { SseWriter, type SseTimings } from './sse-writer';

export class StreamResponse {
  private readonly sse: SseWriter;
  /** Non-empty deltas this client received. */
  delivered = 0;

  constructor(
    res: Response,
    private readonly format: AnswerFormat,
    readonly state: StreamState,
    timings: SseTimings,
  ) {
    this.sse = new SseWriter(res, timings);
  }

  get started(): boolean {
    return this.sse.hasStarted;
  }

  /** Queues one delta (SseWriter writes in order and waits for slow readers on its own). */
  delta(text: string, model: string): void {
    if (text === '') return;
    this.delivered += 1;
    for (const payload of this.format.delta(text, model, this.state)) void this.sse.event(payload);
    this.state.first = false;
  }

  async end(answer: Answer): Promise<void> {
    // Answers that came whole (the cache, another request's generation) are replayed as one delta.
    if (this.delivered === 0 && answer.output !== '') this.delta(answer.output, answer.model);
    for (const payload of this.format.end(answer, this.state)) await this.sse.event(payload);
    await this.sse.done();
  }

  async fail(error: AppError, requestId: string): Promise<void> {
    await this.sse.event(errorBody(error.code, error.message, requestId));
    await this.sse.done();
  }
}
