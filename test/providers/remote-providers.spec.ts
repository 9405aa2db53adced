/**
 * What every remote provider does the same way, on both of its endpoints: answers, streams,
 * finish reasons, stop strings, upstream errors, aborts and keep-alive, each against the
 * backend's fake server. Request mapping, readiness and each dialect's quirks are in
 * vllm.provider.spec.ts, ollama.provider.spec.ts and openai.provider.spec.ts.
 */
import { BackendResponseError, BackendUnreachableError } from '../../src/contracts/backend-errors';
import type { StreamChunk } from '../../src/contracts/generation';
import { closedPortUrl, nextLoopTurn, waitFor } from '../fakes/fake-server';
import {
  collect,
  collectUntilError,
  REMOTE_CASES,
  rejection,
  SECRET,
  signal,
  text,
  useFakeBackend,
} from './provider-fixtures';

const UNPARSEABLE = 'upstream sent an unparseable response';

describe.each(REMOTE_CASES)('$name provider against its fake server', (backendCase) => {
  const { backend, request, expected, promptTokens } = backendCase;
  const ctx = useFakeBackend(backend);

  describe('non-streamed', () => {
    it('returns the text, finish reason and usage', async () => {
      const want = expected(64);
      const result = await ctx.provider.generate(request({ maxNewTokens: 64 }), signal());
      expect(result).toEqual({
        output: want.text,
        finishReason: 'stop',
        usage: { promptTokens, completionTokens: want.tokens.length },
      });
      expect(result.output.length).toBeGreaterThan(0);
    });

    it('maps finish reason "length" when max tokens cut the output', async () => {
      const result = await ctx.provider.generate(request({ maxNewTokens: 2 }), signal());
      expect(result).toEqual({
        output: expected(2).text,
        finishReason: 'length',
        usage: { promptTokens, completionTokens: 2 },
      });
    });

    it('maps a stop string end to end', async () => {
      const full = expected(64).text;
      const stop = full.split(' ')[3];
      const result = await ctx.provider.generate(request({ stop: [stop] }), signal());
      expect(result.finishReason).toBe('stop');
      expect(result.output).toBe(full.slice(0, full.indexOf(stop)));
    });
  });

  describe('streamed', () => {
    it('yields non-empty deltas that join to the output, then one done chunk with usage', async () => {
      const want = expected(64);
      const { chunks, error } = await collectUntilError(ctx.provider.stream(request(), signal()));
      expect(error).toBeNull();
      expect(chunks).toHaveLength(want.tokens.length + 1);
      expect(chunks.slice(0, -1).every((c) => c.type === 'delta' && c.text !== '')).toBe(true);
      expect(text(chunks)).toBe(want.text);
      expect(chunks[chunks.length - 1]).toEqual({
        type: 'done',
        finishReason: 'stop',
        usage: { promptTokens, completionTokens: want.tokens.length },
      });
    });

    it('maps finish reason "length"', async () => {
      const { chunks, error } = await collectUntilError(ctx.provider.stream(request({ maxNewTokens: 3 }), signal()));
      expect(error).toBeNull();
      expect(chunks).toHaveLength(4);
      expect(text(chunks)).toBe(expected(3).text);
      expect(chunks[3]).toEqual({
        type: 'done',
        finishReason: 'length',
        usage: { promptTokens, completionTokens: 3 },
      });
    });

    it('honours a stop string', async () => {
      const full = expected(64).text;
      const stop = full.split(' ')[2];
      const { chunks } = await collectUntilError(ctx.provider.stream(request({ stop: [stop] }), signal()));
      expect(text(chunks)).toBe(full.slice(0, full.indexOf(stop)));
      expect(chunks[chunks.length - 1]).toMatchObject({ type: 'done', finishReason: 'stop' });
    });

    it('fails when the stream ends before its final chunk', async () => {
      ctx.fake.setMode('truncated', { afterChunks: 2 });
      const { chunks, error } = await collectUntilError(ctx.provider.stream(request(), signal()));
      expect(chunks).toHaveLength(2);
      expect(error).toBeInstanceOf(BackendResponseError);
      expect((error as Error).message).toBe('upstream stream ended early');
    });
  });

  describe('bounded streams', () => {
    it('cuts an upstream that streams far more deltas than the request allows, with backend_error', async () => {
      ctx.fake.setMode('flood', { delayMs: 1 });
      const { chunks, error } = await collectUntilError(ctx.provider.stream(request({ maxNewTokens: 20 }), signal()));
      expect(error).toBeInstanceOf(BackendResponseError);
      expect((error as Error).message).toBe('upstream sent more output than the request allows');
      // What was allowed went through (max tokens plus a little slack), nothing beyond it.
      expect(chunks.length).toBeGreaterThanOrEqual(20);
      expect(chunks.length).toBeLessThanOrEqual(30);
      await waitFor(() => ctx.fake.aborted.length === 1, 1000); // the upstream request was cut
    });

    it('releases an upstream that keeps the connection open after its final event, within a short bound', async () => {
      ctx.fake.lingerAfterEnd = true;
      const started = Date.now();
      const { chunks, error } = await collectUntilError(ctx.provider.stream(request(), signal()));
      expect(error).toBeNull();
      expect(chunks[chunks.length - 1]).toMatchObject({ type: 'done' });
      expect(Date.now() - started).toBeLessThan(500); // the answer does not wait for the linger
      await waitFor(() => ctx.fake.aborted.length === 1, 2000); // then the connection is cut
    });

    it('reports when the backend has the request (the accepted hook), before any output', async () => {
      ctx.fake.setMode('hang');
      let accepted = 0;
      const ac = new AbortController();
      const pending = collectUntilError(ctx.provider.stream(request(), ac.signal, { accepted: () => (accepted += 1) }));
      await waitFor(() => accepted === 1, 1000);
      await waitFor(() => ctx.fake.requests.length === 1, 1000);
      ac.abort('done');
      await pending;
      const dead = ctx.newProvider({ baseUrl: await closedPortUrl() });
      let deadAccepted = 0;
      await rejection(dead.generate(request(), signal(), { accepted: () => (deadAccepted += 1) }));
      expect(deadAccepted).toBe(0);
    });
  });

  describe('upstream errors', () => {
    it('turns HTTP 500 into a sanitized BackendResponseError', async () => {
      ctx.fake.setMode('fail');
      const keyed = ctx.newProvider({ apiKey: SECRET });
      const error = (await rejection(keyed.generate(request(), signal()))) as BackendResponseError;
      expect(error).toBeInstanceOf(BackendResponseError);
      expect(error.upstreamStatus).toBe(500);
      expect(error.message).toMatch(backend.failPattern);
      expect(ctx.fake.failMessage(ctx.fake.requests[0])).toContain(SECRET); // the fake did leak it
      expect(error.message).not.toContain(ctx.fake.url);
      expect(error.message).not.toContain('127.0.0.1');
      expect(error.message).not.toContain(SECRET);
      // eslint-disable-next-line no-control-regex
      expect(error.message).not.toMatch(/[\u0000-\u001f]/);
    });

    it('turns an HTTP error on a stream into BackendResponseError before any chunk', async () => {
      ctx.fake.setMode('fail', { status: 503 });
      const keyed = ctx.newProvider({ apiKey: SECRET });
      const { chunks, error } = await collectUntilError(keyed.stream(request(), signal()));
      expect(chunks).toHaveLength(0);
      expect(error).toBeInstanceOf(BackendResponseError);
      expect((error as BackendResponseError).upstreamStatus).toBe(503);
      expect((error as Error).message).not.toContain(SECRET);
    });

    it('turns garbage into BackendResponseError', async () => {
      ctx.fake.setMode('garbage');
      const error = await rejection(ctx.provider.generate(request(), signal()));
      expect(error).toBeInstanceOf(BackendResponseError);
      expect((error as Error).message).toBe(UNPARSEABLE);
      const streamed = await collectUntilError(ctx.provider.stream(request(), signal()));
      expect(streamed.error).toBeInstanceOf(BackendResponseError);
      expect((streamed.error as Error).message).toBe(UNPARSEABLE);
    });

    it('turns an error event after some chunks into BackendResponseError', async () => {
      ctx.fake.setMode('mid-stream-error', { afterChunks: 3 });
      const { chunks, error } = await collectUntilError(ctx.provider.stream(request(), signal()));
      expect(chunks).toHaveLength(3);
      expect(chunks.every((c) => c.type === 'delta')).toBe(true);
      expect(error).toBeInstanceOf(BackendResponseError);
      expect((error as Error).message).toBe(backend.midStreamError);
    });

    it('reports a refused connection as BackendUnreachableError', async () => {
      const dead = ctx.newProvider({ baseUrl: await closedPortUrl() });
      await expect(dead.generate(request(), signal())).rejects.toBeInstanceOf(BackendUnreachableError);
      const { error } = await collectUntilError(dead.stream(request(), signal()));
      expect(error).toBeInstanceOf(BackendUnreachableError);
      await expect(dead.checkReady(signal())).rejects.toBeInstanceOf(BackendUnreachableError);
    });
  });

  describe('aborts', () => {
    it('aborts a hanging generate at once with the signal reason; the server sees it', async () => {
      ctx.fake.setMode('hang');
      const ac = new AbortController();
      const promise = ctx.provider.generate(request(), ac.signal);
      await waitFor(() => ctx.fake.requests.length === 1);
      const reason = new Error('client disconnected');
      const abortedAt = Date.now();
      ac.abort(reason);
      await expect(promise).rejects.toBe(reason);
      expect(Date.now() - abortedAt).toBeLessThan(1000);
      await waitFor(() => ctx.fake.aborted.length === 1, 1000);
      expect(ctx.fake.aborted[0].path).toBe(backendCase.path);
    });

    it('aborts a hanging stream with the signal reason; the server sees it', async () => {
      ctx.fake.setMode('hang');
      const ac = new AbortController();
      const pending = collectUntilError(ctx.provider.stream(request(), ac.signal));
      await waitFor(() => ctx.fake.requests.length === 1);
      ac.abort('client closed');
      expect(await pending).toEqual({ chunks: [], error: 'client closed' });
      await waitFor(() => ctx.fake.aborted.length === 1, 1000);
    });

    it('aborts a slow stream mid-way with the signal reason', async () => {
      ctx.fake.setMode('slow', { delayMs: 100 });
      const ac = new AbortController();
      const chunks: StreamChunk[] = [];
      const reason = new Error('client gone');
      const consume = (async () => {
        for await (const chunk of ctx.provider.stream(request(), ac.signal)) {
          chunks.push(chunk);
          ac.abort(reason);
        }
      })();
      await expect(consume).rejects.toBe(reason);
      expect(chunks).toHaveLength(1);
      await waitFor(() => ctx.fake.aborted.length === 1, 1000);
    });
  });

  it('reuses one keep-alive connection for sequential requests to both endpoints', async () => {
    const fresh = ctx.newProvider();
    // See nextLoopTurn(): a request sent in the very turn a response completed would open a
    // second connection.
    for (let i = 0; i < 3; i += 1) {
      await fresh.generate(request(), signal());
      await nextLoopTurn();
      await collect(fresh.stream(request(), signal()));
      await nextLoopTurn();
      await fresh.generate(backendCase.otherRequest(), signal());
      await nextLoopTurn();
      await collect(fresh.stream(backendCase.otherRequest(), signal()));
      await nextLoopTurn();
    }
    expect(ctx.fake.requests).toHaveLength(12);
    expect(ctx.fake.connections).toBe(1);
  });
});
