/**
 * Recorded Claude Code and Codex CLI requests (test/fixtures/agents/: method, path, headers and
 * body of a first turn and of the turn after a tool call) replayed as they were sent, on the
 * mock and the fake vLLM: each is answered 200 with a stream that the agents' own parsers read
 * (the SDKs' SSE decoding and stream accumulators, which Claude Code and the Codex protocol
 * follow): the first turn calls one of the offered tools, the next one answers in text.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stream as AnthropicStream } from '@anthropic-ai/sdk/core/streaming';
import { MessageStream } from '@anthropic-ai/sdk/lib/MessageStream';
import { Stream as OpenAiStream } from 'openai/core/streaming';
import { ResponseStream } from 'openai/lib/responses/ResponseStream';
import { describeInProcess } from './harness/environment';
import { type FakeBackendsApp, startWithFakeBackends } from './harness/fake-backends-app';
import type { FakeVllm } from './fakes/fake-vllm';

const DIR = join(__dirname, 'fixtures', 'agents');

interface Recorded {
  client: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

const FIXTURES = readdirSync(DIR)
  .filter((file) => file.endsWith('.json'))
  .sort()
  .map((file) => [file, JSON.parse(readFileSync(join(DIR, file), 'utf8')) as Recorded] as const);

describeInProcess('recorded coding-agent requests', 'replays them against the in-process server', () => {
  let backends: FakeBackendsApp;
  let vllm: FakeVllm;
  let baseUrl: string;
  let key: string;

  beforeAll(async () => {
    backends = await startWithFakeBackends({ mockMax: 512, vllmMax: 4096 });
    ({ vllm, baseUrl, key } = backends);
  });
  afterAll(() => backends.close());

  /** The recorded request with our key and `model` in place of the placeholders. */
  function replay(recorded: Recorded, model: string, extra: Record<string, string> = {}): Promise<Response> {
    const headers = {
      ...Object.fromEntries(
        Object.entries(recorded.headers).map(([name, value]) => [name, value.replace('{{KEY}}', key)]),
      ),
      ...extra,
    };
    const body = JSON.stringify(recorded.body).replace('{{MODEL}}', model);
    return fetch(`${baseUrl}${recorded.path}`, { method: recorded.method, headers, body });
  }

  describe.each([['mock'], ['vllm-chat']])('%s', (model) => {
    it.each(FIXTURES.map(([file, recorded]) => [file, recorded] as const))(
      '%s: 200, a stream its client parses, a tool call first and text after the tool result',
      async (file, recorded) => {
        const res = await replay(recorded, model);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
        const toolTurn = file.includes('turn1');
        const tools = (recorded.body.tools as { name: string }[]).map((tool) => tool.name);
        if (recorded.path.startsWith('/v1/messages')) {
          const events = AnthropicStream.fromSSEResponse(res, new AbortController());
          const message = await MessageStream.fromReadableStream(events.toReadableStream()).finalMessage();
          expect(message.model).toBe(model);
          expect(message.stop_reason).toBe(toolTurn ? 'tool_use' : 'end_turn');
          const use = message.content.find((block) => block.type === 'tool_use');
          if (toolTurn) expect(tools).toContain(use?.name);
          else expect(use).toBeUndefined();
          expect(message.usage.output_tokens).toBeGreaterThan(0);
        } else {
          const events = OpenAiStream.fromSSEResponse(res, new AbortController());
          const response = await ResponseStream.fromReadableStream(events.toReadableStream()).finalResponse();
          expect(response.status).toBe('completed');
          const call = response.output.find((item) => item.type === 'function_call');
          if (toolTurn) expect(tools).toContain(call?.name);
          else expect([call, response.output_text.length > 0]).toEqual([undefined, true]);
          expect(response.usage!.output_tokens).toBeGreaterThan(0);
        }
      },
    );
  });

  it('the Claude Code thinking turn reaches vLLM as chat: thinking switched on, thinking blocks and cache_control dropped', async () => {
    const [, recorded] = FIXTURES.find(([file]) => file === 'claude-code-turn2.json')!;
    vllm.reset();
    // The replay above left it in the cache: this one must reach the backend.
    await (await replay(recorded, 'vllm-chat', { 'cache-control': 'no-store' })).text();
    const body = vllm.requests.at(-1)!.body as {
      messages: { role: string; content: unknown }[];
      max_tokens: number;
      chat_template_kwargs?: unknown;
    };
    expect(body.max_tokens).toBe(4096); // 32000 lowered to the model's max_new_tokens
    expect(body.chat_template_kwargs).toEqual({ enable_thinking: true }); // `thinking: enabled`
    expect(body.messages.map((message) => message.role)).toEqual(['system', 'user', 'assistant', 'tool']);
    expect(body.messages[0].content).toContain("You are Claude Code, Anthropic's official CLI for Claude.");
    expect(JSON.stringify(body)).not.toContain('cache_control');
    expect(JSON.stringify(body)).not.toContain('signature');
  });
});
