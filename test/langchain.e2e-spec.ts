/**
 * LangChain JS (`@langchain/openai`), a real client nobody here wrote, against the gateway's
 * mock models: a tool round trip with bindTools (call → ToolMessage → answer), streamed tool
 * call chunks merged by LangChain, withStructuredOutput on a JSON schema, and OpenAIEmbeddings
 * for a query and a batch of documents.
 */
import { AIMessage, AIMessageChunk, HumanMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess } from './harness/environment';
import { createKey } from './harness/keys';
import { listenOnLoopback } from './harness/listen';

const WEATHER_TOOL = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' } },
      required: ['city'],
      additionalProperties: false,
    },
  },
};

describeInProcess('LangChain JS against the gateway', 'points @langchain/openai at the in-process server', () => {
  let app: TestApp;
  let baseURL: string;
  let apiKey: string;

  const chat = () => new ChatOpenAI({ model: 'mock', apiKey, configuration: { baseURL }, maxRetries: 0 });

  beforeAll(async () => {
    app = await startTestApp({
      modelsYaml: `default_model: mock
models:
  - name: mock
    provider: mock
    max_new_tokens: 64
  - name: mock-embed
    kind: embedding
    provider: mock
`,
    });
    baseURL = `${await listenOnLoopback(app)}/v1`;
    apiKey = (await createKey(app, { rpm_limit: 100_000 })).key;
  });
  afterAll(async () => {
    await app.close();
  });

  it('bindTools: a full round trip (tool call → ToolMessage → text answer)', async () => {
    const llm = chat().bindTools([WEATHER_TOOL]);
    const messages: BaseMessage[] = [new HumanMessage('What is the weather in Paris?')];
    const first = await llm.invoke(messages);
    expect(first.tool_calls).toHaveLength(1);
    const [call] = first.tool_calls!;
    expect(call.name).toBe('get_weather');
    expect(typeof call.args.city).toBe('string');
    expect(call.id).toMatch(/^call_/);

    messages.push(first, new ToolMessage({ tool_call_id: call.id!, content: '21 degrees and sunny' }));
    const answer = await llm.invoke(messages);
    expect(answer).toBeInstanceOf(AIMessage);
    expect(answer.tool_calls ?? []).toEqual([]);
    expect(typeof answer.content).toBe('string');
    expect((answer.content as string).length).toBeGreaterThan(0);
  });

  it('streamed tool calls: the chunks merge into the same call as the non-streamed answer', async () => {
    const llm = chat().bindTools([WEATHER_TOOL]);
    const input = [new HumanMessage('Weather in Lisbon, streamed?')];
    const plain = await llm.invoke(input);
    let merged: AIMessageChunk | undefined;
    for await (const chunk of await llm.stream(input)) merged = merged ? merged.concat(chunk) : chunk;
    expect(merged!.tool_calls).toHaveLength(1);
    expect(merged!.tool_calls![0]).toMatchObject({ name: 'get_weather', args: plain.tool_calls![0].args });
  });

  it('withStructuredOutput on a JSON schema: a parsed object', async () => {
    const schema = {
      title: 'city',
      type: 'object',
      properties: { name: { type: 'string' }, population: { type: 'integer' } },
      required: ['name', 'population'],
      additionalProperties: false,
    };
    const structured = chat().withStructuredOutput(schema, { method: 'jsonSchema' });
    const value = (await structured.invoke('Describe Paris')) as Record<string, unknown>;
    expect(value).toEqual({ name: expect.any(String), population: expect.any(Number) });
  });

  it('OpenAIEmbeddings: embedQuery and embedDocuments', async () => {
    const embeddings = new OpenAIEmbeddings({ model: 'mock-embed', apiKey, configuration: { baseURL }, maxRetries: 0 });
    const query = await embeddings.embedQuery('what is a llama?');
    expect(query.length).toBeGreaterThan(0);
    const documents = await embeddings.embedDocuments(['a llama is a camelid', 'what is a llama?']);
    expect(documents).toHaveLength(2);
    documents[1].forEach((x, i) => expect(x).toBeCloseTo(query[i], 5));
  });
});
