/**
 * The backend call a (possibly shared) generation makes, as the cache's coalescing runs it
 * (contracts/flight.ts): its admission by the model's scheduler (a wait in the queue, or 503
 * overloaded), then the call over the upstreams (failover.ts), measured for the LLM metrics.
 * From its start the starting request waits on the backend (not gateway overhead).
 */
import { Injectable } from '@nestjs/common';
import { BackendResponseError } from '../../contracts/backend-errors';
import type { FlightReporter, FlightResult, FlightRunner } from '../../contracts/flight';
import { backendWaitStarted } from '../../contracts/gateway-overhead';
import { ClientDisconnected, type StreamChunk } from '../../contracts/generation';
import type { RequestContext } from '../../contracts/request-context';
import { LlmMetricsService, outcomeForErrorCode } from '../../infra/metrics/llm-metrics.service';
import { SPANS } from '../../infra/tracing/trace-attributes';
import { Tracing } from '../../infra/tracing/tracing';
import type { Admission } from '../scheduling/model-scheduler';
import { Scheduler } from '../scheduling/scheduler.service';
import { UpstreamFailover } from './failover';
import { toGenerationError } from './generation.errors';
import type { ResolvedRequest } from './request-resolver';

@Injectable()
export class BackendCalls {
  constructor(
    private readonly scheduler: Scheduler,
    private readonly failover: UpstreamFailover,
    private readonly metrics: LlmMetricsService,
    private readonly tracing: Tracing,
  ) {}

  /** The call for `request` (streamed upstream when `streaming`), on behalf of the request of `ctx`. */
  runner(request: ResolvedRequest, streaming: boolean, ctx: RequestContext): FlightRunner {
    return async (signal, report): Promise<FlightResult> => {
      backendWaitStarted(ctx);
      const arrivedAt = performance.now();
      // Waits for the request's turn (at once unless the model's upstreams are at max_in_flight);
      // rejects with 503 overloaded, or with the signal's reason when the client leaves meanwhile.
      const admitted = this.scheduler.admit(request.model, request.scheduling, request.params, signal);
      // A span only for a request that waits its turn (a model at max_in_flight).
      const admission =
        admitted instanceof Promise ? await this.tracing.span(SPANS.queue, {}, () => admitted) : admitted;
      try {
        // With Redis, max_in_flight across replicas: the upstream's lease, waited for (a span
        // too) only when the other replicas hold it all.
        if (!(await admission.tryShareBound())) {
          await this.tracing.span(SPANS.queue, {}, () => admission.shareBound(signal, arrivedAt));
        }
      } catch (error) {
        admission.release();
        throw error;
      }
      report.admitted();
      try {
        return await this.call(request, streaming, admission, signal, report);
      } finally {
        admission.release();
      }
    };
  }

  private async call(
    request: ResolvedRequest,
    streaming: boolean,
    admission: Admission,
    signal: AbortSignal,
    report: FlightReporter,
  ): Promise<FlightResult> {
    const { model, params } = request;
    const call = this.metrics.startRequest(model.name, model.provider);
    const hooks = { accepted: report.accepted };
    try {
      if (request.embedding) {
        const served = await this.failover.embed(model, request.embedding, signal, admission, hooks);
        call.servedBy(served.model.name, served.candidate.provider.kind);
        call.finish('success', served.value.usage);
        const { vectors: embeddings, usage } = served.value;
        return { model: served.model.name, result: { output: '', finishReason: 'stop', usage, embeddings } };
      }
      if (!streaming) {
        const served = await this.failover.generate(model, params, signal, admission, hooks);
        call.servedBy(served.model.name, served.candidate.provider.kind);
        call.finish('success', served.value.usage);
        return { model: served.model.name, result: served.value };
      }
      let output = '';
      let reasoningText = '';
      let servedBy = model.name;
      let done: Extract<StreamChunk, { type: 'done' }> | null = null;
      const chunks = this.failover.stream(model, params, signal, admission, hooks);
      for await (const { model: served, candidate, value: chunk } of chunks) {
        servedBy = served.name;
        call.servedBy(served.name, candidate.provider.kind);
        if (chunk.type === 'done') {
          done = chunk;
        } else if (chunk.type === 'reasoning') {
          call.firstToken(); // the model's first token, answer or not
          reasoningText += chunk.text;
          report.emit(chunk.text, served.name, 'reasoning');
        } else {
          call.firstToken();
          output += chunk.text;
          report.emit(chunk.text, served.name);
        }
      }
      if (!done) throw new BackendResponseError('upstream stream ended without its final chunk');
      call.finish('success', done.usage);
      const { finishReason, usage, toolCalls, stopSequence } = done;
      const reasoning = done.reasoning ?? reasoningText;
      const extras = {
        ...(toolCalls ? { toolCalls } : {}),
        ...(reasoning ? { reasoning } : {}),
        ...(stopSequence ? { stopSequence } : {}),
      };
      return { model: servedBy, result: { output, finishReason, usage, ...extras } };
    } catch (error) {
      call.finish(
        error instanceof ClientDisconnected
          ? 'aborted'
          : outcomeForErrorCode(toGenerationError(error, model.name).code),
      );
      throw error;
    } finally {
      call.finish('error'); // counts only if nothing above did
    }
  }
}
