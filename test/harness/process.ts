/**
 * Runs the real entry point (src/main.ts, compiled: see compiled-server.ts) as a child process:
 * startup failures, quickstart, shutdown.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { compiledMain } from './compiled-server';
import { freePort } from './redis-server';

export const ROOT = resolve(__dirname, '..', '..');

/** Starts the server with `env` and resolves with its exit code and stderr (killed after 30 s). */
export function runServerUntilExit(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [compiledMain()], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', DATA_DIR: mkdtempSync(join(tmpdir(), 'llm-exit-')), PORT: '0', ...env },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    // 'close', not 'exit': a process's last stderr bytes may still be in the pipe when it has exited.
    child.on('close', (code) => {
      clearTimeout(killer);
      resolveRun({ code, stderr });
    });
  });
}

export interface ServerProcess {
  proc: ChildProcess;
  base: string;
  stdout(): string;
  /** stdout and stderr together. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts src/main.ts on a free loopback port with `env` and waits until /healthz answers.
 * A server that exits or stays silent for 45 s is killed and the call rejects with its output.
 * The free port is only free when it was picked: a server that finds it taken meanwhile (another
 * test's listener, on a busy machine) is started again on another one.
 */
export async function startServerProcess(env: Record<string, string>): Promise<ServerProcess> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startOnce(env);
    } catch (error) {
      if (attempt >= 3 || !(error instanceof PortTaken)) throw error;
    }
  }
}

class PortTaken extends Error {}

async function startOnce(env: Record<string, string>): Promise<ServerProcess> {
  const port = env.PORT ?? String(await freePort());
  const base = `http://127.0.0.1:${port}`;
  const proc = spawn(process.execPath, [compiledMain()], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...env, PORT: port },
  });
  let stdout = '';
  let output = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    output += chunk.toString();
  });
  proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolveExit) => proc.on('close', (code, signal) => resolveExit({ code, signal })), // once its output is all read
  );
  const deadline = Date.now() + 45_000;
  for (;;) {
    if (proc.exitCode !== null) {
      const message = `the server exited with ${proc.exitCode} before listening:\n${output}`;
      throw env.PORT === undefined && /EADDRINUSE/.test(output) ? new PortTaken(message) : new Error(message);
    }
    try {
      if ((await fetch(`${base}/healthz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`the server did not answer /healthz within 45 s:\n${output}`);
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
  return { proc, base, stdout: () => stdout, output: () => output, exited };
}
