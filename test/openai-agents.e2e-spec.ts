/**
 * The OpenAI Agents SDK (`@openai/agents`, which speaks the Responses API by default) runs an
 * agent with one function tool through the gateway: the model calls the tool, the SDK runs it
 * and sends its result back, the model answers, and the run ends with that final answer; on
 * the mock and on the fake vLLM. @openai/agents 0.14 is the last line on the `openai` 6 SDK
 * (0.15 and later need `openai` 7, which needs Node 22), so it runs on every Node line CI uses.
 */
import { Agent, run, setDefaultOpenAIClient, setOpenAIAPI, setTracingDisabled, tool } from '@openai/agents';
import OpenAI from 'openai';
import { z } from 'zod';
import { describeInProcess } from './harness/environment';
import { type FakeBackendsApp, startWithFakeBackends } from './harness/fake-backends-app';

describeInProcess('OpenAI Agents SDK', 'points the Agents SDK at the in-process server', () => {
  let backends: FakeBackendsApp;

  beforeAll(async () => {
    backends = await startWithFakeBackends();
    const baseURL = `${backends.baseUrl}/v1`;
    setDefaultOpenAIClient(new OpenAI({ apiKey: backends.key, baseURL, maxRetries: 0, timeout: 20_000 }));
    setOpenAIAPI('responses');
    setTracingDisabled(true);
  });
  afterAll(() => backends.close());

  it.each([['mock'], ['vllm-chat']])(
    '%s: an agent with one function tool runs its loop to a final answer',
    async (model) => {
      const calls: string[] = [];
      const weather = tool({
        name: 'get_weather',
        description: 'Current weather of a city',
        // A string only: the fake vLLM fills every string property with the user's words.
        parameters: z.object({ city: z.string() }),
        execute: async ({ city }) => {
          calls.push(city);
          return `21 degrees and sunny in ${city}`;
        },
      });
      const agent = new Agent({
        name: 'Forecaster',
        instructions: 'Answer with the weather.',
        model,
        tools: [weather],
      });
      const result = await run(agent, 'What is the weather in Paris?');
      expect(calls).toHaveLength(1);
      expect(typeof result.finalOutput).toBe('string');
      expect((result.finalOutput as string).length).toBeGreaterThan(0);
      const kinds = result.newItems.map((item) => item.type);
      expect(kinds).toEqual(['tool_call_item', 'tool_call_output_item', 'message_output_item']);
    },
  );
});
