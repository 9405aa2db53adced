/**
 * The gateway as a separate process (dist/main.js, production settings, embedded unless the
 * caller's env says otherwise), for benchmarks that must not share its event loop or CPU.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../test/harness/redis-server';

export const ROOT = resolve(__dirname, '..');

export interface Proc {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
  /** Milliseconds from the spawn to the first /healthz 200 and /readyz 200 (gateways only). */
  startup?: { healthz_ms: number; readyz_ms: number };
}

/** A Node process run from the repository root with a clean environment (PATH and `env` only). */
export function spawnNode(args: string[], env: Record<string, string>, stdout: 'pipe' | 'ignore'): ChildProcess {
  return spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', stdout, 'inherit'],
  });
}

/** SIGTERM, resolved once the process has exited. */
export function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((done) => {
      if (child.exitCode !== null) return done();
      child.once('exit', () => done());
      child.kill('SIGTERM');
    });
}

/**
 * Starts the gateway on a free loopback port with `modelsYaml` (or, given a path, that file),
 * resolved once /readyz answers 200. Embedded means what `npm start` does: PGlite in
 * DATA_DIR/pglite (a new temporary directory unless `dataDir` is given). GATEWAY_NODE_ARGS (e.g.
 * --cpu-prof) are passed to its Node.
 */
export async function startGateway(
  modelsYaml: string | { file: string },
  options: { adminToken: string; env?: Record<string, string>; dataDir?: string },
): Promise<Proc> {
  if (!existsSync(join(ROOT, 'dist', 'main.js'))) throw new Error('build first: npm run build');
  const dir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'bench-gateway-'));
  const modelsFile = typeof modelsYaml === 'string' ? join(dir, 'models.yaml') : modelsYaml.file;
  if (typeof modelsYaml === 'string') writeFileSync(modelsFile, modelsYaml);
  const port = await freePort();
  const spawned = Date.now();
  let healthzMs = -1;
  const child = spawnNode(
    [...(process.env.GATEWAY_NODE_ARGS?.split(' ').filter(Boolean) ?? []), join(ROOT, 'dist', 'main.js')],
    {
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      ADMIN_TOKEN: options.adminToken,
      DATA_DIR: dir,
      MODELS_FILE: modelsFile,
      BACKEND_PROBE_INTERVAL_MS: '0',
      ...options.env,
    },
    'ignore',
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i += 1) {
    if (child.exitCode !== null) throw new Error(`the gateway exited with code ${child.exitCode}`);
    try {
      if (healthzMs < 0 && (await fetch(`${url}/healthz`)).status === 200) healthzMs = Date.now() - spawned;
      if (healthzMs >= 0 && (await fetch(`${url}/readyz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (i > 3000) throw new Error('the gateway did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, url, stop: stopper(child), startup: { healthz_ms: healthzMs, readyz_ms: Date.now() - spawned } };
}
