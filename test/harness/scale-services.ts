/**
 * The infrastructure teams scale out on, started by the tests from Debian's packages on free
 * loopback ports, each in its own temporary directory, and stopped by the tests (never the
 * machine's shared PostgreSQL or Redis):
 * - a Redis Cluster of three masters (`redis-server --cluster-enabled yes`, joined with
 *   `redis-cli --cluster create`);
 * - a Sentinel group: a master, a replica and three Sentinels (`redis-server --sentinel`), whose
 *   master the test can kill to force a failover;
 * - PgBouncer in transaction mode in front of a PostgreSQL.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './redis-server';

const run = promisify(execFile);

export const hasRedisCli = spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0;
export const hasPgBouncer =
  spawnSync('pgbouncer', ['--version'], { stdio: 'ignore' }).status === 0 ||
  spawnSync('/usr/sbin/pgbouncer', ['--version'], { stdio: 'ignore' }).status === 0;

/** Every process started here, killed when the test process exits however it exits. */
const started = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of started) child.kill('SIGKILL');
});

function startProcess(command: string, args: string[], cwd: string): ChildProcess {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()).slice(-4000));
  child.on('exit', () => started.delete(child));
  (child as ChildProcess & { stderrText: () => string }).stderrText = () => stderr;
  started.add(child);
  return child;
}

async function stopProcess(child: ChildProcess | null, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await exited;
}

export async function waitFor<T>(
  what: string,
  check: () => Promise<T | null | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs} ms${lastError ? ` (${(lastError as Error).message})` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]);
  return stdout.trim();
}

function redisServer(dir: string, port: number, extra: string[]): ChildProcess {
  return startProcess(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra],
    dir,
  );
}

async function answersPing(port: number): Promise<boolean> {
  return (await redisCli(port, 'ping')) === 'PONG';
}

export interface RedisCluster {
  ports: number[];
  /** REDIS_CLUSTER_NODES */
  nodes: string;
  /** Kills one master's process (SIGKILL): its slots stop answering. */
  killNode(index: number): Promise<void>;
  stop(): Promise<void>;
}

/** Three masters, no replicas, every slot assigned; resolves once `cluster_state:ok` on each. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'llm-redis-cluster-'));
  const ports = [await freePort(), await freePort(), await freePort()];
  const children = ports.map((port) =>
    redisServer(dir, port, [
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      `nodes-${port}.conf`,
      '--cluster-node-timeout',
      '2000',
    ]),
  );
  const stop = async () => {
    await Promise.all(children.map((child) => stopProcess(child)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) await waitFor(`redis ${port} answers`, () => answersPing(port));
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-yes'], {
      timeout: 60_000,
    });
    for (const port of ports) {
      await waitFor(`cluster node ${port} ok`, async () =>
        (await redisCli(port, 'cluster', 'info')).includes('cluster_state:ok'),
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    ports,
    nodes: ports.map((p) => `127.0.0.1:${p}`).join(','),
    killNode: (index) => stopProcess(children[index]),
    stop,
  };
}

export interface SentinelGroup {
  name: string;
  /** REDIS_SENTINELS */
  sentinels: string;
  masterPort(): Promise<number>;
  /** Kills the current master's process (SIGKILL): the Sentinels promote the replica. */
  killMaster(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A master, one replica and three Sentinels (quorum 2) that declare the master down after 1 s
 * without an answer, so a failover takes a few seconds.
 */
export async function startSentinelGroup(name = 'llm'): Promise<SentinelGroup> {
  const dir = mkdtempSync(join(tmpdir(), 'llm-redis-sentinel-'));
  const [master, replica] = [await freePort(), await freePort()];
  const data = new Map<number, ChildProcess>();
  data.set(master, redisServer(dir, master, []));
  data.set(replica, redisServer(dir, replica, ['--replicaof', '127.0.0.1', String(master)]));
  const sentinelPorts = [await freePort(), await freePort(), await freePort()];
  const sentinels = sentinelPorts.map((port) => {
    const conf = join(dir, `sentinel-${port}.conf`);
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${master} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    return startProcess('redis-server', [conf, '--sentinel'], dir);
  });
  const stop = async () => {
    await Promise.all([...data.values(), ...sentinels].map((child) => stopProcess(child)));
    rmSync(dir, { recursive: true, force: true });
  };
  const masterPort = async () =>
    Number((await redisCli(sentinelPorts[0], 'sentinel', 'get-master-addr-by-name', name)).split('\n')[1]);
  try {
    for (const port of [master, replica, ...sentinelPorts])
      await waitFor(`redis ${port} answers`, () => answersPing(port));
    await waitFor('the replica is in sync', async () =>
      (await redisCli(replica, 'info', 'replication')).includes('master_link_status:up'),
    );
    for (const port of sentinelPorts) {
      await waitFor(`sentinel ${port} knows the replica and its peers`, async () => {
        const info = await redisCli(port, 'sentinel', 'master', name);
        const field = (key: string) => Number(info.split('\n')[info.split('\n').indexOf(key) + 1]);
        return field('num-slaves') >= 1 && field('num-other-sentinels') >= 2;
      });
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    name,
    sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','),
    masterPort,
    async killMaster() {
      const port = await masterPort();
      await stopProcess(data.get(port) ?? null);
      return port;
    },
    stop,
  };
}

export interface PgBouncer {
  port: number;
  /** `url` (a postgres:// URL straight to PostgreSQL) rewritten to go through this PgBouncer. */
  urlFor(url: string): string;
  stop(): Promise<void>;
}

/**
 * PgBouncer in transaction mode in front of `postgresUrl`'s server: any database name is passed
 * through (the `*` entry), as its user; a small pool, so server connections are really shared.
 */
export async function startPgBouncer(postgresUrl: string, poolSize = 20): Promise<PgBouncer> {
  const target = new URL(postgresUrl);
  const dir = mkdtempSync(join(tmpdir(), 'llm-pgbouncer-'));
  const port = await freePort();
  const user = decodeURIComponent(target.username || 'postgres');
  writeFileSync(join(dir, 'users.txt'), `"${user}" ""\n`);
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${target.hostname} port=${target.port || 5432} user=${user}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir = ${dir}`,
      'auth_type = any',
      `auth_file = ${join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${poolSize}`,
      'max_client_conn = 2000',
      'max_db_connections = 0',
      'server_reset_query =',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  const binary =
    spawnSync('pgbouncer', ['--version'], { stdio: 'ignore' }).status === 0 ? 'pgbouncer' : '/usr/sbin/pgbouncer';
  // PgBouncer refuses to run as root: it then runs as postgres (-u), which must read its files.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chmodSync(dir, 0o777);
  const child = startProcess(binary, [...(asRoot ? ['-u', 'postgres'] : []), join(dir, 'pgbouncer.ini')], dir);
  const stop = async () => {
    await stopProcess(child, 'SIGINT');
    rmSync(dir, { recursive: true, force: true });
  };
  const urlFor = (url: string) => {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(port);
    return parsed.toString();
  };
  try {
    const { Client } = await import('pg');
    await waitFor('pgbouncer answers', async () => {
      const client = new Client({ connectionString: urlFor(postgresUrl) });
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return true;
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, urlFor, stop };
}
