/**
 * Per-request cost of the limit checks, as the generation path pays it: the rate-limit hit
 * (RateLimitStore.hit), the quota reservation (UsageAccounting.begin: one conditional UPDATE)
 * and the settlement (complete(): token quota UPDATE, TPM charge, ledger record). The backend,
 * HTTP and validation are left out. Measured on the real Nest providers, in embedded mode
 * (PGlite in memory, in-process rate store) and with PostgreSQL + Redis (DATABASE_URL /
 * REDIS_URL, default the local services; skipped when they are not reachable).
 *
 *   node -r @swc-node/register bench/limits.ts [--iterations N] [--concurrency N] [--mode embedded|services|both]
 *
 * Sequential requests give the cost of one request on an idle key; the concurrent run sends
 * `concurrency` requests at a time on the same key (row-lock contention on its quota row).
 * Writes bench/results/limits.json (relative to the current directory) and prints it.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { AdminKeysService } from '../src/modules/admin/admin-keys.service';
import { ApiKeyService } from '../src/modules/auth/api-key.service';
import type { AuthenticatedKey } from '../src/contracts/authenticated-key';
import { loadConfig } from '../src/infra/config/app.config';
import { createLogger } from '../src/infra/logging/logger';
import { RATE_LIMIT_WINDOW_MS } from '../src/stores/rate-limit/rate-limit-window';
import { RateLimitCounters } from '../src/stores/rate-limit/rate-limit-counters';
import { createApp } from '../src/server';
import { UsageAccounting } from '../src/modules/usage/usage-accounting';
import { arg, percentiles, reachable, saveResult } from './lib';

type Mode = 'embedded' | 'services';

async function withSchema<T>(url: string, run: (schema: string) => Promise<T>): Promise<T> {
  const schema = `bench_limits_${randomBytes(4).toString('hex')}`;
  const client = new Client({ connectionString: url });
  await client.connect();
  await client.query(`CREATE SCHEMA "${schema}"`);
  try {
    return await run(schema);
  } finally {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  }
}

async function measure(
  mode: Mode,
  iterations: number,
  concurrency: number,
  services: { db: string; redis: string },
  schema?: string,
) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-limits-'));
  const config = loadConfig({
    DATABASE_URL: mode === 'embedded' ? 'pglite://memory' : services.db,
    ...(mode === 'services' ? { REDIS_URL: services.redis } : {}),
    REDIS_PREFIX: `bench-limits-${randomBytes(4).toString('hex')}:`,
    MODELS_FILE: resolve(__dirname, '..', 'test', 'fixtures', 'models.yaml'),
    ADMIN_TOKEN: randomBytes(24).toString('hex'),
    DATA_DIR: dir,
    LOG_LEVEL: 'warn',
  });
  if (schema && config.database.kind === 'postgres') config.database.schema = schema;
  const app = await createApp(config, createLogger('warn'));
  await app.init();
  try {
    const created = await app.get(AdminKeysService).create({
      name: 'bench',
      rpm_limit: 1_000_000_000,
      tpm_limit: 1_000_000_000,
      monthly_quota: 1_000_000_000,
      monthly_token_quota: 1_000_000_000_000,
    });
    const key = (await app.get(ApiKeyService).authenticate(created.key)) as AuthenticatedKey;
    const store = app.get(RateLimitCounters);
    const accounting = app.get(UsageAccounting);
    const steps = {
      rate_limit: [] as number[],
      quota_reserve: [] as number[],
      settle: [] as number[],
      total: [] as number[],
    };

    const once = async (record: boolean) => {
      const t0 = performance.now();
      const hit = await store.hit(key.id, RATE_LIMIT_WINDOW_MS);
      if (hit.count > key.rpmLimit!) throw new Error('rate limited');
      const t1 = performance.now();
      const usage = await accounting.begin(key, 'mock-a');
      const t2 = performance.now();
      await usage.settle({ unit: true, promptTokens: 5, completionTokens: 12, cached: false });
      const t3 = performance.now();
      if (!record) return;
      steps.rate_limit.push(t1 - t0);
      steps.quota_reserve.push(t2 - t1);
      steps.settle.push(t3 - t2);
      steps.total.push(t3 - t0);
    };

    for (let i = 0; i < Math.min(200, iterations); i += 1) await once(false); // warm-up (JIT, pools, scripts)
    for (let i = 0; i < iterations; i += 1) await once(true);
    const sequential = Object.fromEntries(Object.entries(steps).map(([name, samples]) => [name, percentiles(samples)]));

    for (const samples of Object.values(steps)) samples.length = 0;
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < iterations) {
          next += 1;
          await once(true);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const concurrent = {
      concurrency,
      per_request: percentiles(steps.total),
      requests_per_second: Math.round(iterations / seconds),
    };
    return { iterations, sequential, concurrent };
  } finally {
    await app.close();
  }
}

async function main(): Promise<void> {
  const iterations = Number(arg('iterations', '2000'));
  const concurrency = Number(arg('concurrency', '16'));
  const which = arg('mode', 'both');
  const services = {
    db: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test',
    redis: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
  };
  const results: Record<string, unknown> = {};
  if (which !== 'services') results.embedded = await measure('embedded', iterations, concurrency, services);
  if (which !== 'embedded') {
    results.services =
      (await reachable(services.db)) && (await reachable(services.redis))
        ? await withSchema(services.db, (schema) => measure('services', iterations, concurrency, services, schema))
        : { skipped: 'PostgreSQL or Redis not reachable' };
  }
  const output = {
    bench: 'limits',
    measures: 'rate-limit hit + quota reserve + settle (token charge, TPM charge, ledger record) per request',
    node: process.version,
    cpus: cpus().length,
    /** Other work on the machine skews the tail: the 1-minute load average at the end of the run. */
    load_average_1m: Math.round(loadavg()[0] * 100) / 100,
    at: new Date().toISOString(),
    ...results,
  };
  saveResult('limits', output);
}

main().catch((error: Error) => {
  console.error(error);
  process.exit(1);
});
