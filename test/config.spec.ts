/**
 * Configuration is validated once at startup: every failure CONFIG.md lists stops the process
 * with a non-zero exit and a message naming the variable, or the file, model and field.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../src/infra/config/app.config';
import { ConfigError } from '../src/infra/config/config.errors';
import { parseModelsYaml } from '../src/infra/config/models.loader';
import { BAD_MODELS } from './fixtures/bad-models';

const ROOT = resolve(__dirname, '..');

function parse(yaml: string, env: Record<string, string> = {}) {
  return parseModelsYaml(yaml, 'models.yaml', env, '/srv');
}

describe('models.yaml scheduling fields', () => {
  const vllm = (extra: string, upstreams = '    base_url: http://a:1\n') =>
    `default_model: v\nmodels:\n  - name: v\n    provider: vllm\n    upstream_model: m\n${upstreams}${extra}`;

  it('defaults: no max_in_flight, least_outstanding, a bounded queue, no engine metrics', () => {
    expect(parse(vllm('')).models[0]).toMatchObject({
      upstreams: [{ baseUrl: 'http://a:1', weight: 1, maxInFlight: null }],
      loadBalancing: 'least_outstanding',
      queue: { maxLength: 1000, maxWaitMs: 30000 },
      upstreamMetrics: false,
    });
  });

  it('max_in_flight per model applies to every upstream unless one sets its own', () => {
    const upstreams =
      '    upstreams:\n      - base_url: http://a:1\n      - base_url: http://b:1\n        max_in_flight: 2\n';
    const yaml = vllm(
      '    max_in_flight: 8\n    queue: { max_length: 0, max_wait_ms: 500 }\n    load_balancing: prefix_affinity\n    upstream_metrics: true\n',
      upstreams,
    );
    expect(parse(yaml).models[0]).toMatchObject({
      upstreams: [{ maxInFlight: 8 }, { maxInFlight: 2 }],
      queue: { maxLength: 0, maxWaitMs: 500 },
      loadBalancing: 'prefix_affinity',
      upstreamMetrics: true,
    });
  });

  it.each([
    ['load_balancing: random', /field "load_balancing": unknown policy "random"/],
    ['max_in_flight: 0', /field "max_in_flight": must be between 1 and/],
    ['queue: { max_length: 10, max_wait: 5 }', /queue: field "max_wait": unknown field/],
    ['queue: { max_wait_ms: 0 }', /queue: field "max_wait_ms": must be between 1 and/],
  ])('rejects %s, naming the field', (extra, message) => {
    expect(() => parse(vllm(`    ${extra}\n`))).toThrow(message);
  });

  it('rejects scheduling fields where they mean nothing', () => {
    const mock = 'default_model: m\nmodels:\n  - name: m\n    provider: mock\n';
    expect(() => parse(`${mock}    max_in_flight: 2\n`)).toThrow(/field "max_in_flight": not used by provider mock/);
    const ollama =
      'default_model: o\nmodels:\n  - name: o\n    provider: ollama\n    upstream_model: m\n    base_url: http://a:1\n';
    expect(() => parse(`${ollama}    upstream_metrics: true\n`)).toThrow(
      /field "upstream_metrics": only used by provider vllm/,
    );
  });
});

describe('models.yaml validation', () => {
  it.each(BAD_MODELS)('rejects %s, naming the file, model and field', (_label, yaml, message) => {
    expect(() => parse(yaml)).toThrow(ConfigError);
    expect(() => parse(yaml)).toThrow(message);
  });

  it('parses the CONFIG.md example with defaults applied', () => {
    const config = parse(
      `default_model: llama3-8b
models:
  - name: llama3-8b
    provider: vllm
    upstream_model: meta-llama/Meta-Llama-3-8B-Instruct
    upstreams:
      - base_url: http://vllm-0:8000
      - base_url: http://vllm-1:8000/
        weight: 2
    api_key_env: VLLM_API_KEY
    max_new_tokens: 2048
    default_max_new_tokens: 256
    timeout_ms: 60000
    cache_ttl_seconds: 3600
    required: true
    fallbacks: [llama3-8b-ollama]
  - name: llama3-8b-ollama
    provider: ollama
    upstream_model: llama3:8b
    base_url: http://ollama:11434
`,
      { VLLM_API_KEY: 'upstream-secret' },
    );
    expect(config.defaultModel).toBe('llama3-8b');
    expect(config.models[0]).toMatchObject({
      upstreams: [
        { baseUrl: 'http://vllm-0:8000', weight: 1 },
        { baseUrl: 'http://vllm-1:8000', weight: 2 },
      ],
      apiKey: 'upstream-secret',
      cacheTtlSeconds: 3600,
      required: true,
      fallbacks: ['llama3-8b-ollama'],
    });
    expect(config.models[1]).toMatchObject({
      upstreams: [{ baseUrl: 'http://ollama:11434', weight: 1 }],
      maxNewTokens: 2048,
      defaultMaxNewTokens: 256,
      timeoutMs: 60000,
      cacheTtlSeconds: null,
      required: false,
      apiKey: null,
    });
  });

  it('reads kind: chat by default, embedding for the CONFIG.md embedding model', () => {
    const config = parse(
      `default_model: chat
models:
  - name: chat
    provider: mock
  - name: bge-small
    kind: embedding
    provider: vllm
    upstream_model: BAAI/bge-small-en-v1.5
    base_url: http://vllm-embed:8000
`,
      {},
    );
    expect(config.models.map((m) => [m.name, m.kind])).toEqual([
      ['chat', 'chat'],
      ['bge-small', 'embedding'],
    ]);
  });

  it('resolves a llama-cpp model_path against the working directory', () => {
    const config = parse(
      `default_model: t\nmodels:\n  - name: t\n    provider: llama-cpp\n    model_path: data/t.gguf\n`,
    );
    expect(config.models[0].llamaCpp).toMatchObject({ modelPath: '/srv/data/t.gguf', threads: 1 });
  });

  it('the shipped config/models.yaml is valid', () => {
    const config = loadConfig({ MODELS_FILE: join(ROOT, 'config', 'models.yaml'), ADMIN_TOKEN: 'x'.repeat(40) }, ROOT);
    expect(config.models.models.length).toBeGreaterThan(0);
  });

  it('the shipped config/models.yaml serves every endpoint: a chat default, an embedding model and a tool-calling demo', () => {
    const { models } = loadConfig(
      { MODELS_FILE: join(ROOT, 'config', 'models.yaml'), ADMIN_TOKEN: 'x'.repeat(40) },
      ROOT,
    );
    const byName = new Map(models.models.map((model) => [model.name, model]));
    expect(byName.get(models.defaultModel)).toMatchObject({ name: 'tiny', kind: 'chat', provider: 'llama-cpp' });
    expect(byName.get('tiny-embed')).toMatchObject({ kind: 'embedding', provider: 'llama-cpp' });
    // The mock calls tools (tiny's GGUF has no tool-aware template); its name says it is a demo.
    expect(byName.get('demo-tools')).toMatchObject({ kind: 'chat', provider: 'mock' });
  });
});

describe('environment validation', () => {
  const base = {
    MODELS_FILE: join(ROOT, 'test', 'fixtures', 'models.yaml'),
    ADMIN_TOKEN: 'a-strong-admin-token-0123456789abcdef',
  };
  const BAD_ENV: [Record<string, string>, RegExp][] = [
    [{ PORT: 'eighty' }, /^PORT: expected an integer/],
    [{ PORT: '70000' }, /^PORT: must be between 0 and 65535/],
    [{ DEFAULT_RPM: '0' }, /^DEFAULT_RPM: must be between 1/],
    [{ CACHE_TTL_SECONDS: '-1' }, /^CACHE_TTL_SECONDS: must be between 0/],
    [{ CACHE_MAX_ENTRIES: '1.5' }, /^CACHE_MAX_ENTRIES: expected an integer/],
    [{ MAX_PROMPT_CHARS: 'lots' }, /^MAX_PROMPT_CHARS: expected an integer/],
    [{ BODY_LIMIT: 'huge' }, /^BODY_LIMIT: expected a size/],
    [{ READINESS_TIMEOUT_MS: '0' }, /^READINESS_TIMEOUT_MS: must be between 1/],
    [{ SHUTDOWN_GRACE_MS: 'soon' }, /^SHUTDOWN_GRACE_MS: expected an integer/],
    [{ BACKEND_PROBE_INTERVAL_MS: '-1' }, /^BACKEND_PROBE_INTERVAL_MS: must be between 0/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL: must be one of/],
    [{ DATABASE_URL: 'mysql://x' }, /^DATABASE_URL: must start with postgres:\/\//],
    [{ REDIS_URL: 'http://x' }, /^REDIS_URL: must start with redis:\/\//],
    [{ SKIP_MIGRATIONS: 'maybe' }, /^SKIP_MIGRATIONS: expected true or false/],
    [{ NODE_ENV: 'staging' }, /^NODE_ENV: must be one of/],
    [{ MODELS_FILE: '/nonexistent/models.yaml' }, /^MODELS_FILE: \/nonexistent\/models\.yaml does not exist/],
    [{ NODE_ENV: 'production', ADMIN_TOKEN: 'short' }, /^ADMIN_TOKEN: must be at least 32 characters/],
    [{ NODE_ENV: 'production', ADMIN_TOKEN: 'a'.repeat(40) }, /^ADMIN_TOKEN: is too repetitive/],
    [{ DB_TIMEOUT_MS: '0' }, /^DB_TIMEOUT_MS: must be between 1/],
    [{ REDIS_TIMEOUT_MS: 'fast' }, /^REDIS_TIMEOUT_MS: expected an integer/],
    [{ READYZ_REQUIRE_REDIS: 'sometimes' }, /^READYZ_REQUIRE_REDIS: expected true or false/],
    [{ ADMIN_PORT: '70000' }, /^ADMIN_PORT: must be between 0 and 65535/],
    [{ PORT: '9000', ADMIN_PORT: '9000' }, /^ADMIN_PORT: must differ from PORT \(9000\)/],
    [{ KEEP_ALIVE_TIMEOUT_MS: '10' }, /^KEEP_ALIVE_TIMEOUT_MS: must be between 1000/],
    [{ REDIS_CLUSTER_NODES: 'a:1,b' }, /^REDIS_CLUSTER_NODES: expected comma-separated host:port entries, got "b"/],
    [{ REDIS_CLUSTER_NODES: 'a:0' }, /^REDIS_CLUSTER_NODES: expected comma-separated host:port/],
    [{ REDIS_URL: 'redis://x', REDIS_CLUSTER_NODES: 'a:1' }, /^REDIS_URL, REDIS_CLUSTER_NODES: set only one way/],
    [{ REDIS_SENTINELS: 'a:26379' }, /^REDIS_SENTINELS: needs REDIS_SENTINEL_NAME/],
    [{ REDIS_SENTINEL_NAME: 'm' }, /^REDIS_SENTINEL_NAME: needs REDIS_SENTINELS/],
    [{ REDIS_URL: 'redis://x', REDIS_PASSWORD: 'p' }, /^REDIS_PASSWORD, REDIS_TLS: with REDIS_URL put them in the URL/],
    [{ REDIS_TLS: 'true' }, /^REDIS_PASSWORD, REDIS_TLS: need REDIS_CLUSTER_NODES or REDIS_SENTINELS/],
    [{ DATABASE_MIGRATION_URL: 'postgres://x/db' }, /^DATABASE_MIGRATION_URL: needs a postgres:\/\/ DATABASE_URL/],
    [{ WORKERS: '0' }, /^WORKERS: must be between 1/],
    [{ WORKERS: '2' }, /^WORKERS: 2 processes share limits, cache and keys only through PostgreSQL and Redis/],
    [{ WORKERS: '2', DATABASE_URL: 'postgres://x/db' }, /^WORKERS: 2 processes/],
  ];
  it.each(BAD_ENV)('rejects %p', (overrides, message) => {
    expect(() => loadConfig({ ...base, ...overrides })).toThrow(message);
  });

  it('reads the three ways to Redis and WORKERS', () => {
    expect(loadConfig({ ...base, REDIS_URL: 'redis://r:6379' }).redis).toEqual({ kind: 'url', url: 'redis://r:6379' });
    expect(
      loadConfig({ ...base, REDIS_CLUSTER_NODES: 'a:7000, [::1]:7001', REDIS_PASSWORD: 's', REDIS_TLS: 'true' }).redis,
    ).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'a', port: 7000 },
        { host: '::1', port: 7001 },
      ],
      password: 's',
      tls: true,
    });
    expect(loadConfig({ ...base, REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'main' }).redis).toEqual({
      kind: 'sentinel',
      sentinels: [{ host: 's1', port: 26379 }],
      name: 'main',
      password: null,
      tls: false,
    });
    const pooled = loadConfig({
      ...base,
      DATABASE_URL: 'postgres://bouncer:6432/db',
      DATABASE_MIGRATION_URL: 'postgres://pg:5432/db',
      REDIS_CLUSTER_NODES: 'a:7000',
      WORKERS: '4',
    });
    expect(pooled.database).toEqual({
      kind: 'postgres',
      url: 'postgres://bouncer:6432/db',
      migrationUrl: 'postgres://pg:5432/db',
    });
    expect(pooled.workers).toBe(4);
  });

  it('refuses production without ADMIN_TOKEN', () => {
    const { ADMIN_TOKEN: _omitted, ...withoutToken } = base;
    expect(() => loadConfig({ ...withoutToken, NODE_ENV: 'production' })).toThrow(
      /^ADMIN_TOKEN: must be set when NODE_ENV=production/,
    );
  });

  it('applies the documented defaults', () => {
    const config = loadConfig(base, ROOT);
    expect(config).toMatchObject({
      port: 8000,
      host: '0.0.0.0',
      database: { kind: 'pglite', dataDir: join(ROOT, 'data', 'pglite') },
      redis: null,
      workers: 1,
      defaultRpm: 60,
      cacheTtlSeconds: 3600,
      responsesStoreDays: 30,
      cacheMaxEntries: 10000,
      maxPromptChars: 100000,
      bodyLimitBytes: 1024 * 1024,
      readinessTimeoutMs: 1000,
      shutdownGraceMs: 30000,
      backendProbeIntervalMs: 15000,
      logLevel: 'info',
      skipMigrations: false,
      dbTimeoutMs: 3000,
      redisTimeoutMs: 250,
      readyzRequireRedis: true,
      adminPort: null,
      keepAliveTimeoutMs: 65000,
    });
    expect(config.models.models[0].breaker).toEqual({ failures: 3, cooldownMs: 10_000 });
  });

  it('outside production, generates an admin token once into DATA_DIR and reuses it', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'llm-admin-'));
    const { ADMIN_TOKEN: _omitted, ...withoutToken } = base;
    const first = loadConfig({ ...withoutToken, DATA_DIR: dataDir });
    const second = loadConfig({ ...withoutToken, DATA_DIR: dataDir });
    expect(first.adminToken.length).toBeGreaterThanOrEqual(32);
    expect(second.adminToken).toBe(first.adminToken);
    expect(first.adminTokenSource).toEqual({ file: join(dataDir, 'admin-token'), created: true });
    expect(second.adminTokenSource).toEqual({ file: join(dataDir, 'admin-token'), created: false });
  });
});
