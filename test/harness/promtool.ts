/**
 * Debian's `prometheus` package in tests: `promtool` runs, and a real Prometheus server on a
 * loopback port with its own temporary data directory (removed at close), scraping only the
 * targets its test gives it.
 *
 * Where the binaries are missing, tests that need them skip and say why, unless
 * PROMETHEUS_REQUIRED=true (set by .ci/run, which installs the package): then they fail.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { freePort } from './redis-server';

export const PROMETHEUS_REQUIRED = /^(1|true)$/i.test(process.env.PROMETHEUS_REQUIRED ?? '');

function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

export const PROMTOOL = which('promtool');
export const PROMETHEUS = which('prometheus');

/** A describe block that needs promtool and prometheus: skipped (saying why) or failed (CI) without them. */
export function describeWithPrometheus(name: string, fn: () => void): void {
  if (PROMTOOL && PROMETHEUS) {
    describe(name, fn);
  } else if (PROMETHEUS_REQUIRED) {
    describe(name, () => {
      it('has promtool and prometheus on PATH (PROMETHEUS_REQUIRED is set)', () => {
        throw new Error('promtool or prometheus not found on PATH: apt-get install prometheus (.ci/run does)');
      });
    });
  } else {
    describe.skip(`${name} [skipped: promtool and prometheus are not installed — apt-get install prometheus]`, fn);
  }
}

export interface ToolRun {
  code: number | null;
  /** stdout and stderr together, for failure messages. */
  output: string;
}

export function promtool(args: string[], options: { input?: string; cwd?: string } = {}): ToolRun {
  const run = spawnSync(PROMTOOL!, args, { input: options.input, cwd: options.cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: run.status, output: `${run.stdout ?? ''}${run.stderr ?? ''}` };
}

/** What one instant query returned. */
export interface QueryResult {
  resultType: 'vector' | 'matrix' | 'scalar' | 'string';
  result: unknown[] | [number, string];
}

export interface PrometheusServer {
  url: string;
  /** An instant query through the HTTP API; rejects on a query error (bad syntax, unknown function). */
  query(expr: string): Promise<QueryResult>;
  /** GET /api/v1/<path> → `data`. */
  api<T>(path: string): Promise<T>;
  close(): Promise<void>;
}

/** Whether an instant query returned any data (a non-empty vector, or a scalar). */
export function hasData(result: QueryResult): boolean {
  return result.resultType === 'scalar' || (Array.isArray(result.result) && result.result.length > 0);
}

/**
 * Starts Prometheus with `config` (an object written as prometheus.yml) on a free loopback
 * port, and waits until it is ready.
 */
export async function startPrometheus(config: Record<string, unknown>): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'llm-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, toYaml(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc: ChildProcess = spawn(
    PROMETHEUS!,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  proc.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));

  const close = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) {
      await close();
      throw new Error(`prometheus exited with ${proc.exitCode}:\n${output}`);
    }
    try {
      if ((await fetch(`${url}/-/ready`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await close();
      throw new Error(`prometheus was not ready within 30 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}/api/v1/${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus /api/v1/${path}: ${body.error ?? res.status}`);
    return body.data;
  };
  return {
    url,
    api,
    query: (expr) => api<QueryResult>(`query?query=${encodeURIComponent(expr)}`),
    close,
  };
}
