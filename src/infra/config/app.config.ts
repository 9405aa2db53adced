/**
 * The one typed configuration object. Built once at startup from the environment and
 * models.yaml; nothing else in the server reads process.env.
 */
import { ConfigError } from './config.errors';
import {
  type Env,
  readBool,
  readByteSize,
  readDatabaseUrl,
  readEnum,
  readInt,
  readOptionalInt,
  readOptionalString,
  readString,
} from './env.parsers';
import { loadModelsFile } from './models.loader';
import type { ModelsConfig } from '../../contracts/model-config';
import { resolveAdminToken } from './admin-token';
import { readTracingConfig, type TracingConfig } from './tracing.config';
import { readRedisTarget, type RedisTarget } from './redis.config';
import { resolve } from 'node:path';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type DatabaseTarget =
  | {
      kind: 'postgres';
      url: string;
      /** Isolated schema (tests); default search_path otherwise. */
      schema?: string;
      /**
       * DATABASE_MIGRATION_URL: a direct connection for migrations and their session-level advisory
       * lock. Set means DATABASE_URL goes through a transaction-pooling PgBouncer, so the request
       * path's connections carry no session state (no startup parameters either).
       */
      migrationUrl?: string | null;
    }
  | {
      kind: 'pglite';
      dataDir: string | null /* null: in memory */;
      /**
       * The data directory a new `dataDir` starts as a copy of (pglite-template.ts): the build's
       * template when undefined, none (initdb) when null; tests give their own.
       */
      template?: string | null;
    };

export interface AppConfig {
  nodeEnv: 'development' | 'production' | 'test';
  port: number;
  host: string;
  database: DatabaseTarget;
  dataDir: string;
  /** REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS (redis.config.ts); null: in-process stores. */
  redis: RedisTarget | null;
  /** Namespace of every Redis key and channel, so several deployments can share one Redis. */
  redisPrefix: string;
  /** CURRENCY: the ISO 4217 code of prices and budgets (shown in usage and the console). */
  currency: string;
  adminToken: string;
  /** Where the admin token came from; a generated one lives in a file under DATA_DIR. */
  adminTokenSource: 'env' | { file: string; created: boolean };
  modelsFile: string;
  models: ModelsConfig;
  defaultRpm: number;
  cacheTtlSeconds: number;
  cacheMaxEntries: number;
  maxPromptChars: number;
  bodyLimitBytes: number;
  readinessTimeoutMs: number;
  shutdownGraceMs: number;
  /** Background upstream probes refreshing llm_backend_up; 0 turns them off (then only /readyz probes). */
  backendProbeIntervalMs: number;
  logLevel: LogLevel;
  skipMigrations: boolean;
  /** Failed authentications allowed per client address per minute before 429. */
  authFailureLimit: number;
  /** Express "trust proxy": honour X-Forwarded-For from this many proxy hops. */
  trustProxyHops: number;
  /** When set, /metrics requires `Authorization: Bearer <token>`. */
  metricsToken: string | null;
  /** Bound of a database call on the request path (connect, pool wait, statement). */
  dbTimeoutMs: number;
  /** Bound of a Redis call on the request path; past it Redis counts as down until a probe answers. */
  redisTimeoutMs: number;
  /** false: /readyz stays 200 while Redis is down (the server runs degraded). */
  readyzRequireRedis: boolean;
  /** When set, /admin/* and /metrics are served only on this second port (0 picks a free one). */
  adminPort: number | null;
  /** Idle keep-alive of client connections (above the load balancer's idle timeout). */
  keepAliveTimeoutMs: number;
  /** How long startup waits for another replica's migration lock before failing. */
  migrationLockTimeoutMs: number;
  /** An SSE client that reads nothing for this long is disconnected (billed as a client cut). */
  sseStallTimeoutMs: number;
  /** A stream with nothing to send for this long gets an SSE comment, so proxies keep it open. */
  sseHeartbeatMs: number;
  /** OpenTelemetry tracing (the OTEL_* variables); null: off. */
  tracing: TracingConfig | null;
  /** Days a stored /v1/responses result is kept; 0 stores nothing (CONFIG.md RESPONSES_STORE_DAYS). */
  responsesStoreDays: number;
  /** Server processes sharing the port on this machine (node:cluster); above 1 needs PostgreSQL and Redis. */
  workers: number;
}

export function loadConfig(env: Env, cwd: string = process.cwd()): AppConfig {
  const nodeEnv = readEnum(env, 'NODE_ENV', ['development', 'production', 'test'], 'development');
  const dataDir = resolve(cwd, readString(env, 'DATA_DIR', './data'));
  const databaseUrl = readDatabaseUrl(env, 'DATABASE_URL');
  const migrationUrl = readDatabaseUrl(env, 'DATABASE_MIGRATION_URL');
  if (
    migrationUrl !== null &&
    (databaseUrl === null || databaseUrl.startsWith('pglite:') || migrationUrl.startsWith('pglite:'))
  ) {
    throw new ConfigError('DATABASE_MIGRATION_URL: needs a postgres:// DATABASE_URL and is itself a postgres:// URL');
  }
  const database: DatabaseTarget =
    databaseUrl === null
      ? { kind: 'pglite', dataDir: resolve(dataDir, 'pglite') }
      : databaseUrl === 'pglite://memory'
        ? { kind: 'pglite', dataDir: null }
        : { kind: 'postgres', url: databaseUrl, migrationUrl };
  const redis = readRedisTarget(env);
  const workers = readInt(env, 'WORKERS', 1, { min: 1, max: 256 });
  if (workers > 1 && (database.kind !== 'postgres' || redis === null)) {
    throw new ConfigError(
      `WORKERS: ${workers} processes share limits, cache and keys only through PostgreSQL and Redis: set DATABASE_URL and REDIS_URL (or REDIS_CLUSTER_NODES / REDIS_SENTINELS), or WORKERS=1`,
    );
  }
  const modelsFile = readString(env, 'MODELS_FILE', 'config/models.yaml');
  const admin = resolveAdminToken(readOptionalString(env, 'ADMIN_TOKEN'), nodeEnv, dataDir);

  const port = readInt(env, 'PORT', 8000, { min: 0, max: 65535 });
  const adminPort = readOptionalInt(env, 'ADMIN_PORT', { min: 0, max: 65535 });
  if (adminPort !== null && adminPort !== 0 && adminPort === port) {
    throw new ConfigError(`ADMIN_PORT: must differ from PORT (${port})`);
  }

  return {
    nodeEnv,
    port,
    host: readString(env, 'HOST', '0.0.0.0'),
    database,
    dataDir,
    redis,
    redisPrefix: readString(env, 'REDIS_PREFIX', 'llm-server:'),
    currency: readCurrency(env),
    adminToken: admin.token,
    adminTokenSource: admin.source,
    modelsFile,
    models: loadModelsFile(modelsFile, env, cwd),
    defaultRpm: readInt(env, 'DEFAULT_RPM', 60, { min: 1, max: 1_000_000 }),
    cacheTtlSeconds: readInt(env, 'CACHE_TTL_SECONDS', 3600, { min: 0, max: 31_536_000 }),
    responsesStoreDays: readInt(env, 'RESPONSES_STORE_DAYS', 30, { min: 0, max: 3650 }),
    cacheMaxEntries: readInt(env, 'CACHE_MAX_ENTRIES', 10_000, { min: 1, max: 10_000_000 }),
    maxPromptChars: readInt(env, 'MAX_PROMPT_CHARS', 100_000, { min: 1, max: 100_000_000 }),
    bodyLimitBytes: readByteSize(env, 'BODY_LIMIT', '1mb'),
    readinessTimeoutMs: readInt(env, 'READINESS_TIMEOUT_MS', 1000, { min: 1, max: 600_000 }),
    shutdownGraceMs: readInt(env, 'SHUTDOWN_GRACE_MS', 30_000, { min: 0, max: 3_600_000 }),
    backendProbeIntervalMs: readInt(env, 'BACKEND_PROBE_INTERVAL_MS', 15_000, { min: 0, max: 3_600_000 }),
    logLevel: readEnum(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    skipMigrations: readBool(env, 'SKIP_MIGRATIONS', false),
    authFailureLimit: readInt(env, 'AUTH_FAILURE_LIMIT', 30, { min: 1, max: 1_000_000 }),
    trustProxyHops: readInt(env, 'TRUST_PROXY_HOPS', 0, { min: 0, max: 10 }),
    metricsToken: readOptionalString(env, 'METRICS_TOKEN'),
    dbTimeoutMs: readInt(env, 'DB_TIMEOUT_MS', 3000, { min: 1, max: 600_000 }),
    redisTimeoutMs: readInt(env, 'REDIS_TIMEOUT_MS', 250, { min: 1, max: 60_000 }),
    readyzRequireRedis: readBool(env, 'READYZ_REQUIRE_REDIS', true),
    adminPort,
    keepAliveTimeoutMs: readInt(env, 'KEEP_ALIVE_TIMEOUT_MS', 65_000, { min: 1000, max: 3_600_000 }),
    migrationLockTimeoutMs: readInt(env, 'MIGRATION_LOCK_TIMEOUT_MS', 60_000, { min: 1, max: 3_600_000 }),
    sseStallTimeoutMs: readInt(env, 'SSE_STALL_TIMEOUT_MS', 30_000, { min: 100, max: 3_600_000 }),
    sseHeartbeatMs: readInt(env, 'SSE_HEARTBEAT_MS', 15_000, { min: 100, max: 3_600_000 }),
    tracing: readTracingConfig(env),
    workers,
  };
}

export { ConfigError };

/** CURRENCY: three capital letters (ISO 4217), default USD. */
function readCurrency(env: NodeJS.ProcessEnv): string {
  const value = readString(env, 'CURRENCY', 'USD');
  if (!/^[A-Z]{3}$/.test(value))
    throw new ConfigError(`CURRENCY must be an ISO 4217 code such as USD or EUR (got "${value}")`);
  return value;
}
