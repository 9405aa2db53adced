/**
 * A streamed answer in some AnswerFormat (an AnswerSink for the pipeline): deltas as they come,
 * then the closing events and `data: [DONE]`; an error after the first byte becomes an error
 * event, then `[DONE]`. The SSE connection is kept alive (heartbeats) from open() on.
 */
import type { Response } from 'express';
import type { Answer, AnswerSink } from '../../contracts/answer';
import type { AppError } from '../../contracts/app-error';
import { errorBody } from '../core/error-body';
import type { AnswerFormat, StreamState } from './answer-format';
import { SseWriter, type SseTimings } from './sse-writer';

export class StreamResponse implements AnswerSink {
  readonly streaming = true;
  private sse: SseWriter | null = null;
  /** Non-empty deltas of the answer this client received. */
  delivered = 0;
  /** Whether reasoning deltas came (else an answer's reasoning is replayed whole, first). */
  private reasoningDelivered = false;

  constructor(
    private readonly res: Response,
    private readonly format: AnswerFormat,
    readonly state: StreamState,
    private readonly timings: SseTimings,
    private readonly requestId: string,
  ) {}

  get started(): boolean {
    return this.sse?.hasStarted ?? false;
  }

  open(): void {
    this.sse ??= new SseWriter(this.res, this.timings);
  }

  /** Queues one delta (SseWriter writes in order and waits for slow readers on its own). */
  delta(text: string, model: string, kind?: 'reasoning'): void {
    if (text === '') return;
    if (kind === 'reasoning') {
      this.reasoningDelivered = true;
      const payloads = this.format.reasoningDelta?.(text, model, this.state) ?? [];
      if (payloads.length > 0) for (const payload of payloads) void this.send(this.writer(), payload);
      return;
    }
    this.delivered += 1;
    const sse = this.writer();
    for (const payload of this.format.delta(text, model, this.state)) void this.send(sse, payload);
    this.state.first = false;
  }

  async answer(answer: Answer): Promise<void> {
    // Answers that came whole (the cache, another request's generation) are replayed as one delta,
    // their reasoning first, as it streamed.
    if (this.delivered === 0 && !this.reasoningDelivered && answer.reasoning) {
      this.delta(answer.reasoning, answer.model, 'reasoning');
    }
    if (this.delivered === 0 && answer.output !== '') this.delta(answer.output, answer.model);
    await this.format.finish?.(answer, this.state);
    const sse = this.writer();
    for (const payload of this.format.end(answer, this.state)) await this.send(sse, payload);
    await sse.done(!this.format.typedEvents);
  }

  async fail(error: AppError): Promise<void> {
    const sse = this.writer();
    const payloads = this.format.streamError?.(error, this.requestId, this.state) ?? [
      errorBody(error.code, error.message, this.requestId),
    ];
    for (const payload of payloads) await this.send(sse, payload);
    await sse.done(!this.format.typedEvents);
  }

  private send(sse: SseWriter, payload: unknown): Promise<void> {
    return sse.event(payload, this.format.typedEvents ? (payload as { type: string }).type : undefined);
  }

  private writer(): SseWriter {
    this.open();
    return this.sse!;
  }
}
