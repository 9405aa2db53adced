/**
 * Which mode the suite runs in:
 * - in-process (default): each test file boots the app with PGlite in memory and in-process stores;
 * - services: DATABASE_URL / REDIS_URL set (npm run test:services) — each app gets its own
 *   PostgreSQL schema and Redis key prefix, so parallel test files never see each other's data;
 * - remote: API_BASE=http://host:port runs the HTTP tests against an already running server.
 */
export const API_BASE = process.env.API_BASE?.replace(/\/+$/, '') || null;
export const isRemote = API_BASE !== null;
export const SERVICES_DATABASE_URL = process.env.DATABASE_URL || null;
export const SERVICES_REDIS_URL = process.env.REDIS_URL || null;
/**
 * Set (npm run test:scale's PgBouncer leg): DATABASE_URL goes through a transaction-pooling
 * PgBouncer and this is the direct connection; each app then gets its own database (a pooled
 * connection cannot carry a schema's search_path) and migrates through this URL.
 */
export const SERVICES_MIGRATION_URL = process.env.DATABASE_MIGRATION_URL || null;
/**
 * How the apps the tests start reach Redis: a Redis Cluster when REDIS_CLUSTER_NODES is set
 * (npm run test:scale; REDIS_URL then stays the plain Redis for tests that use one directly),
 * else REDIS_URL.
 */
export const SERVICES_REDIS_ENV: Record<string, string> = process.env.REDIS_CLUSTER_NODES
  ? // The scale leg runs the suite beside three redis-servers and PgBouncer on a shared 2-core
    // machine: a 250 ms bound there marks Redis down under load alone (and the cache is then
    // skipped). Files that test the bounds under faults set their own.
    { REDIS_CLUSTER_NODES: process.env.REDIS_CLUSTER_NODES, REDIS_TIMEOUT_MS: '1000' }
  : SERVICES_REDIS_URL
    ? { REDIS_URL: SERVICES_REDIS_URL }
    : {};
export const TEST_ADMIN_TOKEN = process.env.ADMIN_TOKEN || 'test-admin-token-0123456789abcdefghijklmnop';

/**
 * A describe block for tests that need the in-process app (overridden providers, a fake clock,
 * fake backends). Against API_BASE it is skipped, and says why.
 */
export function describeInProcess(name: string, reason: string, fn: () => void): void {
  if (isRemote) {
    describe.skip(`${name} [skipped with API_BASE: ${reason}]`, fn);
  } else {
    describe(name, fn);
  }
}

/** A describe block that needs real PostgreSQL and Redis (npm run test:services). */
export function describeServices(name: string, fn: () => void): void {
  if (!SERVICES_DATABASE_URL || !SERVICES_REDIS_URL || isRemote) {
    describe.skip(`${name} [skipped: needs DATABASE_URL and REDIS_URL — run npm run test:services]`, fn);
  } else {
    describe(name, fn);
  }
}
