/**
 * The README's "Official fields" table, walked: every field of every row is sent, one at a
 * time, on top of a minimal request of its API, against the fake vLLM (and the fake Ollama where
 * the row names it): `honoured` and `accepted` fields answer 200, `passed on` ones reach the
 * backends named under the field names the row gives, `refused` ones are a 400 naming the field
 * (and their neutral value, given in parentheses, a 200). The table must list every field of
 * the official SDKs' create parameters (read from the installed `openai` and
 * `@anthropic-ai/sdk` type declarations), so a field the SDKs add fails here until it is placed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestApp } from './harness/app';
import { describeInProcess } from './harness/environment';
import { type FakeBackendsApp, startWithFakeBackends } from './harness/fake-backends-app';
import type { FakeOllama } from './fakes/fake-ollama';
import type { FakeVllm } from './fakes/fake-vllm';

const ROOT = join(__dirname, '..');

type Api = 'chat' | 'completions' | 'embeddings' | 'responses' | 'messages';

interface Row {
  api: Api;
  fields: { name: string; neutral?: unknown }[];
  kind: 'honoured' | 'passed on' | 'accepted' | 'refused';
  /** Passed on: the field each backend receives, per field of the row (one name: for all). */
  vllm: string[];
  ollama: string[];
}

function tableRows(): Row[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const table = readme.split('<!-- official fields table -->')[1].split('<!-- end of official fields table -->')[0];
  return table
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| API') && !line.startsWith('|---'))
    .map((line) => {
      const [api, fieldsCell, here] = line.split(' | ').map((cell) => cell.replace(/^\| ?|\s*\|$/g, '').trim());
      const fields = [...fieldsCell.matchAll(/`([a-z_]+)`(?: \((.+?)\))?/g)].map(([, name, neutral]) =>
        neutral === undefined ? { name } : { name, neutral: JSON.parse(neutral.replace(/`/g, '')) as unknown },
      );
      const kind = (['honoured', 'passed on', 'accepted', 'refused'] as const).find((k) => here.startsWith(k));
      if (!kind) throw new Error(`README official fields: no kind in "${line}"`);
      const names = (backend: string) => {
        const part = here.split(', ').find((p) => p.replace(/^passed on: /, '').startsWith(`${backend} `));
        return part ? [...part.matchAll(/`([a-z_.]+)`/g)].map(([, name]) => name) : [];
      };
      return { api: api as Api, fields, kind, vllm: names('vLLM'), ollama: names('Ollama') };
    });
}

/** Top-level property names of an exported interface in an SDK's .d.ts. */
function sdkFields(file: string, iface: string): string[] {
  const text = readFileSync(join(ROOT, 'node_modules', file), 'utf8');
  const start = text.indexOf('{', text.indexOf(`export interface ${iface} `));
  const names: string[] = [];
  let depth = 0;
  for (const line of text.slice(start).split('\n')) {
    const match = /^\s{4}(\w+)\??:/.exec(line);
    if (depth === 1 && match) names.push(match[1]);
    depth += (line.match(/{/g) ?? []).length - (line.match(/}/g) ?? []).length;
    if (depth === 0) break;
  }
  return names;
}

const SDK: Record<Api, string[]> = {
  chat: sdkFields('openai/resources/chat/completions/completions.d.ts', 'ChatCompletionCreateParamsBase'),
  completions: sdkFields('openai/resources/completions.d.ts', 'CompletionCreateParamsBase'),
  embeddings: sdkFields('openai/resources/embeddings.d.ts', 'EmbeddingCreateParams'),
  responses: sdkFields('openai/resources/responses/responses.d.ts', 'ResponseCreateParamsBase'),
  messages: sdkFields('@anthropic-ai/sdk/resources/messages/messages.d.ts', 'MessageCreateParamsBase'),
};

const PATHS: Record<Api, string> = {
  chat: '/v1/chat/completions',
  completions: '/v1/completions',
  embeddings: '/v1/embeddings',
  responses: '/v1/responses',
  messages: '/v1/messages',
};

const BASE: Record<Api, (model: string) => Record<string, unknown>> = {
  chat: (model) => ({ model, messages: [{ role: 'user', content: 'hello' }] }),
  completions: (model) => ({ model, prompt: 'hello' }),
  embeddings: () => ({ model: 'vllm-embed', input: 'hello' }),
  responses: (model) => ({ model, input: 'hello', store: false }),
  messages: (model) => ({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hello' }] }),
};

const TOOL = { type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } };

/** A value of each field that uses it (for `refused` fields: one that cannot be honoured). */
const SAMPLES: Record<Api, Record<string, unknown>> = {
  chat: {
    messages: [{ role: 'user', content: 'hi there' }],
    model: 'vllm-chat',
    max_completion_tokens: 8,
    max_tokens: 8,
    temperature: 0.5,
    top_p: 0.9,
    stop: ['zz'],
    seed: 7,
    stream: true,
    stream_options: { include_usage: true, include_obfuscation: false },
    tools: [TOOL],
    tool_choice: 'none',
    parallel_tool_calls: false,
    response_format: { type: 'json_object' },
    presence_penalty: 0.5,
    frequency_penalty: -0.5,
    logit_bias: { '42': 5 },
    reasoning_effort: 'low',
    store: true,
    metadata: { team: 'a' },
    service_tier: 'auto',
    safety_identifier: 'user-1',
    prompt_cache_key: 'k',
    prompt_cache_options: { ttl: '1h' },
    prompt_cache_retention: '24h',
    verbosity: 'low',
    prediction: { type: 'content', content: 'hello' },
    moderation: { mode: 'off' },
    user: 'u',
    n: 2,
    logprobs: true,
    top_logprobs: 3,
    modalities: ['text', 'audio'],
    audio: { voice: 'alloy', format: 'mp3' },
    web_search_options: {},
    functions: [{ name: 'f' }],
    function_call: 'auto',
  },
  completions: {
    model: 'vllm-chat',
    prompt: 'once upon',
    max_tokens: 8,
    temperature: 0.5,
    top_p: 0.9,
    stop: 'zz',
    seed: 7,
    stream: true,
    stream_options: { include_usage: true },
    presence_penalty: 0.5,
    frequency_penalty: -0.5,
    logit_bias: { '42': 5 },
    user: 'u',
    n: 2,
    best_of: 2,
    echo: true,
    logprobs: 2,
    suffix: 'end',
  },
  embeddings: {
    input: ['a', 'b'],
    model: 'vllm-embed',
    dimensions: 4,
    encoding_format: 'base64',
    user: 'u',
  },
  responses: {
    model: 'vllm-chat',
    input: [{ role: 'user', content: 'hi' }],
    instructions: 'Be brief.',
    max_output_tokens: 8,
    temperature: 0.5,
    top_p: 0.9,
    tools: [{ type: 'function', name: 'f', parameters: { type: 'object', properties: {} } }],
    tool_choice: 'none',
    parallel_tool_calls: false,
    text: { format: { type: 'json_object' }, verbosity: 'low' },
    stream: true,
    store: true,
    reasoning: { effort: 'low', summary: 'auto' },
    metadata: { team: 'a' },
    user: 'u',
    include: ['reasoning.encrypted_content'],
    prompt_cache_key: 'k',
    prompt_cache_options: { ttl: '1h' },
    prompt_cache_retention: '24h',
    safety_identifier: 'user-1',
    service_tier: 'auto',
    truncation: 'auto',
    stream_options: { include_obfuscation: false },
    context_management: [{ type: 'compaction', compact_threshold: 1000 }],
    moderation: { mode: 'off' },
    background: true,
    conversation: 'conv_1',
    prompt: { id: 'pmpt_1' },
    top_logprobs: 2,
  },
  messages: {
    model: 'vllm-chat',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', cache_control: { type: 'ephemeral' } }] }],
    max_tokens: 8,
    system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
    stop_sequences: ['zz'],
    temperature: 0.5,
    top_p: 0.9,
    top_k: 5,
    tools: [{ name: 'f', input_schema: { type: 'object', properties: {} } }],
    tool_choice: { type: 'auto' },
    stream: true,
    output_config: { effort: 'low' },
    metadata: { user_id: 'u' },
    thinking: { type: 'enabled', budget_tokens: 1024 },
    cache_control: { type: 'ephemeral' },
    service_tier: 'auto',
    speed: 'standard',
    diagnostics: {},
    inference_geo: 'us',
    user_profile_id: 'p',
    workspace_id: 'w',
    context_management: { edits: [] },
    container: 'container_1',
    mcp_servers: [{ type: 'url', url: 'https://example.com', name: 'x' }],
  },
};

/** The value at a dotted path of a recorded body. */
function at(body: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], body);
}

const ROWS = tableRows();

describeInProcess('README "Official fields", walked', 'reads what the fake backends received', () => {
  let backends: FakeBackendsApp;
  let app: TestApp;
  let vllm: FakeVllm;
  let ollama: FakeOllama;
  let key: string;

  beforeAll(async () => {
    backends = await startWithFakeBackends({
      extraYaml: ({ vllm: url }) => `  - name: vllm-embed
    kind: embedding
    provider: vllm
    upstream_model: org/embed
    base_url: ${url}
`,
    });
    ({ app, vllm, ollama, key } = backends);
  });
  afterAll(() => backends.close());

  const send = (api: Api, model: string, fields: Record<string, unknown>) =>
    app
      .http()
      .post(PATHS[api])
      .set('Authorization', `Bearer ${key}`)
      .set('Cache-Control', 'no-store')
      .send({ ...BASE[api](model), ...fields });

  it.each(Object.keys(SDK) as Api[])('the table lists every field of the official %s request', (api) => {
    expect(SDK[api].length).toBeGreaterThan(3);
    const listed = new Set(ROWS.filter((row) => row.api === api).flatMap((row) => row.fields.map((f) => f.name)));
    expect(SDK[api].filter((field) => !listed.has(field))).toEqual([]);
  });

  const cases = ROWS.flatMap((row) => row.fields.map((field, index) => ({ row, field, index })));

  it.each(cases.map((c) => [c.row.api, c.field.name, c.row.kind, c] as const))(
    '%s %s: %s',
    async (api, name, kind, { row, field, index }) => {
      const sample = { [name]: SAMPLES[api][name] };
      // A response to continue exists only once one was stored.
      if (name === 'previous_response_id') sample[name] = (await send(api, 'vllm-chat', { store: true })).body.id;
      expect(sample[name]).toBeDefined();
      vllm.reset();
      ollama.reset();
      const res = await send(api, 'vllm-chat', sample);
      if (kind === 'refused') {
        expect([res.status, res.body.error?.param]).toEqual([400, name]);
        if ('neutral' in field) expect((await send(api, 'vllm-chat', { [name]: field.neutral })).status).toBe(200);
        return;
      }
      // A response object has `error: null`; no other answer has an error at all.
      expect([res.status, res.body.error ?? null]).toEqual([200, null]);
      if (kind !== 'passed on') return;
      const vllmName = row.vllm[Math.min(index, row.vllm.length - 1)];
      expect(at(vllm.requests.at(-1)!.body, vllmName)).toBeDefined();
      if (row.ollama.length > 0) {
        expect((await send(api, 'ollama-chat', sample)).status).toBe(200);
        const ollamaName = row.ollama[Math.min(index, row.ollama.length - 1)];
        expect(at(ollama.requests.at(-1)!.body, ollamaName)).toEqual(sample[name]);
      }
    },
  );

  it('passed-on fields are part of the cache key; their neutral values are the same request as omitting them', async () => {
    const chat = (fields: Record<string, unknown>) =>
      app
        .http()
        .post('/v1/chat/completions')
        .set('Authorization', `Bearer ${key}`)
        .send({ model: 'vllm-chat', messages: [{ role: 'user', content: 'cache key of penalties' }], ...fields });
    expect((await chat({})).body.cached).toBe(false);
    expect((await chat({ presence_penalty: 0, frequency_penalty: 0, logit_bias: {} })).body.cached).toBe(true);
    expect((await chat({ presence_penalty: 0.5 })).body.cached).toBe(false);
    expect((await chat({ logit_bias: { '7': 1 } })).body.cached).toBe(false);
    expect((await chat({ reasoning_effort: 'high' })).body.cached).toBe(false);
    expect((await chat({ presence_penalty: 0.5 })).body.cached).toBe(true);
  });
});
