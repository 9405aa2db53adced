/**
 * The test app factory (the seed's conftest): boots the real AppModule in-process with a
 * fresh, migrated database and test-only overrides, or points at API_BASE in remote mode.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test, type TestingModuleBuilder } from '@nestjs/testing';
import { Client } from 'pg';
import request from 'supertest';
import { AppModule } from '../../src/app.module';
import { configureApp, createHttpAdapter } from '../../src/http/server/http-app';
import { Clock } from '../../src/contracts/clock';
import { type AppConfig, loadConfig } from '../../src/infra/config/app.config';
import { createLogger, NestPinoLogger } from '../../src/infra/logging/logger';
import {
  API_BASE,
  SERVICES_DATABASE_URL,
  SERVICES_MIGRATION_URL,
  SERVICES_REDIS_ENV,
  TEST_ADMIN_TOKEN,
} from './environment';
import { FakeClock } from './fake-clock';
import { scratchDir, testTemplatePath } from './pglite-template';

export const FIXTURE_MODELS = resolve(__dirname, '..', 'fixtures', 'models.yaml');

export interface TestAppOptions {
  /** Extra environment variables (on top of the test defaults). */
  env?: Record<string, string>;
  /** models.yaml text; written to a temp file and used as MODELS_FILE. */
  modelsYaml?: string;
  /** A clock to inject; a FakeClock is created when omitted. */
  clock?: FakeClock;
  /** Share another app's database schema / Redis namespace (a second replica). */
  shareWith?: TestApp;
  /** Where log lines go (defaults to stdout, and LOG_LEVEL silent unless TEST_LOG_LEVEL). */
  logStream?: { write(line: string): void };
  /** Further provider overrides. */
  override?: (builder: TestingModuleBuilder) => TestingModuleBuilder;
}

export interface TestApp {
  app: INestApplication | null;
  config: AppConfig | null;
  clock: FakeClock;
  /** supertest target: the in-process server, or API_BASE. */
  http: () => ReturnType<typeof request>;
  /** Isolation handles shared with replicas: a schema, or (through PgBouncer) a database. */
  schema: string | null;
  database: string | null;
  redisPrefix: string;
  close: () => Promise<void>;
}

function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** `url` naming database `name` instead of its own. */
export function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

async function adminStatement(url: string, text: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/**
 * A fresh PostgreSQL target of the services for one test's own data sources: a schema, or,
 * through PgBouncer (SERVICES_MIGRATION_URL), a database reached through it, migrated directly.
 */
export async function isolatedPostgres(): Promise<{
  target: Extract<AppConfig['database'], { kind: 'postgres' }>;
  drop(): Promise<void>;
}> {
  const name = uniqueName('test');
  const direct = SERVICES_MIGRATION_URL;
  if (direct) {
    await adminStatement(direct, `CREATE DATABASE "${name}"`);
    return {
      target: {
        kind: 'postgres',
        url: withDatabase(SERVICES_DATABASE_URL!, name),
        migrationUrl: withDatabase(direct, name),
      },
      drop: () => adminStatement(direct, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
    };
  }
  await createSchema(SERVICES_DATABASE_URL!, name);
  return {
    target: { kind: 'postgres', url: SERVICES_DATABASE_URL!, schema: name },
    drop: () => dropSchema(SERVICES_DATABASE_URL!, name),
  };
}

async function createSchema(url: string, schema: string): Promise<void> {
  await adminStatement(url, `CREATE SCHEMA "${schema}"`);
}

export async function dropSchema(url: string, schema: string): Promise<void> {
  await adminStatement(url, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** An embedded database of `config` starts as a copy of the tests' migrated template. */
export function useTestTemplate(config: AppConfig): AppConfig {
  if (config.database.kind === 'pglite' && config.database.dataDir !== null)
    config.database.template = testTemplatePath();
  return config;
}

export function writeModelsFile(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'llm-server-models-'));
  const file = join(dir, 'models.yaml');
  writeFileSync(file, yaml);
  return file;
}

export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const clock = options.clock ?? options.shareWith?.clock ?? new FakeClock();
  const base = API_BASE;
  if (base) {
    // The server under test runs on real time, so times computed from this clock (expires_at) must too.
    const realTime = options.clock ?? new FakeClock(new Date());
    return {
      app: null,
      config: null,
      clock: realTime,
      http: () => request(base),
      schema: null,
      database: null,
      redisPrefix: '',
      close: async () => undefined,
    };
  }
  const pooled = SERVICES_DATABASE_URL !== null && SERVICES_MIGRATION_URL !== null;
  const schema = SERVICES_DATABASE_URL && !pooled ? (options.shareWith?.schema ?? uniqueName('test')) : null;
  const ownsSchema = schema !== null && !options.shareWith;
  if (ownsSchema) await createSchema(SERVICES_DATABASE_URL!, schema);
  const database = pooled ? (options.shareWith?.database ?? uniqueName('test')) : null;
  const ownsDatabase = database !== null && !options.shareWith;
  if (ownsDatabase) await adminStatement(SERVICES_MIGRATION_URL!, `CREATE DATABASE "${database}"`);
  const redisPrefix = options.shareWith?.redisPrefix ?? `${uniqueName('llm-test')}:`;
  // Each app its own DATA_DIR (its journal and, embedded, its database), replicas included.
  const dataDir = scratchDir('llm-server-data-');

  const env: Record<string, string> = {
    NODE_ENV: 'test',
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    // Embedded: PGlite in DATA_DIR/pglite, as `npm start` runs it, started from the tests' template.
    ...(SERVICES_DATABASE_URL ? { DATABASE_URL: SERVICES_DATABASE_URL } : {}),
    DATA_DIR: dataDir,
    MODELS_FILE: options.modelsYaml ? writeModelsFile(options.modelsYaml) : FIXTURE_MODELS,
    REDIS_PREFIX: redisPrefix,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    // No background upstream probes: they would add requests to the fake backends at random moments.
    BACKEND_PROBE_INTERVAL_MS: '0',
    ...SERVICES_REDIS_ENV,
    ...(database
      ? {
          DATABASE_URL: withDatabase(SERVICES_DATABASE_URL!, database),
          DATABASE_MIGRATION_URL: withDatabase(SERVICES_MIGRATION_URL!, database),
        }
      : {}),
    ...options.env,
  };
  // A test's own DATABASE_URL (a proxy in front of the services) names this app's database too.
  if (database && options.env?.DATABASE_URL) env.DATABASE_URL = withDatabase(options.env.DATABASE_URL, database);
  // A test's own way to Redis replaces the suite's.
  const redisWays = ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'];
  const ownWay = redisWays.find((name) => options.env?.[name]);
  if (ownWay) for (const name of redisWays) if (name !== ownWay) delete env[name];
  const config = loadConfig(env);
  if (schema && config.database.kind === 'postgres') config.database.schema = schema;
  useTestTemplate(config);
  const logger = createLogger(config.logLevel, options.logStream);

  let builder = Test.createTestingModule({ imports: [AppModule.forRoot(config, logger)] })
    .overrideProvider(Clock)
    .useValue(clock);
  if (options.override) builder = options.override(builder);
  const moduleRef = await builder.compile();
  const app = moduleRef.createNestApplication<NestExpressApplication>(createHttpAdapter(), {
    bodyParser: false,
    logger: new NestPinoLogger(logger),
  });
  configureApp(app, config, logger);
  await app.init();
  const server = app.getHttpServer();

  return {
    app,
    config,
    clock,
    http: () => request(server),
    schema,
    database,
    redisPrefix,
    close: async () => {
      await app.close();
      if (ownsSchema) await dropSchema(SERVICES_DATABASE_URL!, schema);
      if (ownsDatabase)
        await adminStatement(SERVICES_MIGRATION_URL!, `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
