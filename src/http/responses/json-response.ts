/** A complete answer as one JSON body in some AnswerFormat (an AnswerSink for the pipeline). */
import type { Response } from 'express';
import type { Answer, AnswerSink } from '../../contracts/answer';
import type { AppError } from '../../contracts/app-error';
import type { AnswerFormat, StreamState } from './answer-format';

export class JsonResponse implements AnswerSink {
  readonly streaming = false;

  constructor(
    private readonly res: Response,
    private readonly format: AnswerFormat,
    private readonly state: StreamState,
  ) {}

  get started(): boolean {
    return this.res.headersSent;
  }

  open(): void {
    // nothing to keep alive: the body is written at once at the end
  }

  delta(): void {
    // not streamed
  }

  async answer(answer: Answer): Promise<void> {
    await this.format.finish?.(answer, this.state);
    this.res.status(200).json(this.format.body(answer, this.state));
  }

  async fail(error: AppError): Promise<void> {
    throw error; // never started before the answer: the exception filter writes it
  }
}
