/**
 * The README quickstart, end to end with real processes: the server (src/main.ts) starts in
 * development mode without ADMIN_TOKEN, generates DATA_DIR/admin-token (0600, never logged),
 * `scripts/keys.js` creates and lists a key with it, the key generates, SIGTERM exits 0.
 * And `migration:run` applies the migrations once, then has nothing to do.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE_MODELS } from '../harness/app';
import { compiledEntry } from '../harness/compiled-server';
import { TEST_ADMIN_TOKEN } from '../harness/environment';
import { ROOT, startServerProcess } from '../harness/process';
import { freePort } from '../harness/redis-server';

jest.setTimeout(60_000);

/** Runs a node script to completion (killed after 30 s). */
function runNode(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      args,
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => resolve({ code: error ? (child.exitCode ?? 1) : 0, stdout, stderr }),
    );
  });
}

const dirs: string[] = [];
function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'llm-quickstart-'));
  dirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('README quickstart: server without ADMIN_TOKEN + npm run keys', () => {
  let child: ChildProcess | null = null;
  afterAll(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  it('generates a 0600 admin token it never logs; keys.js creates and lists a working key; SIGTERM exits 0', async () => {
    const dataDir = freshDataDir();
    // No NODE_ENV (development), no ADMIN_TOKEN, no DATABASE_URL (PGlite in DATA_DIR).
    const server = await startServerProcess({
      DATA_DIR: dataDir,
      MODELS_FILE: FIXTURE_MODELS,
      // info, not silent: the token must stay out of a log that is actually written.
      LOG_LEVEL: 'info',
      BACKEND_PROBE_INTERVAL_MS: '0',
    });
    child = server.proc;
    const { base } = server;

    const tokenFile = join(dataDir, 'admin-token');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const token = readFileSync(tokenFile, 'utf8').trim();
    expect(token.length).toBeGreaterThanOrEqual(32);

    const cliEnv = { DATA_DIR: dataDir, SERVER_URL: base };
    const created = await runNode([join(ROOT, 'scripts', 'keys.js'), 'create', '--name', 'quickstart'], cliEnv);
    expect(created.stderr).not.toContain(token);
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout) as { id: string; key: string; name: string };
    expect(key.key).toMatch(/^sk-/);
    expect(key.name).toBe('quickstart');

    const generated = await fetch(`${base}/v1/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key.key },
      body: JSON.stringify({ prompt: 'Hello', max_new_tokens: 5 }),
    });
    expect(generated.status).toBe(200);
    expect(await generated.json()).toMatchObject({ model: 'mock-a' });

    // `--export` prints one shell line, for `eval "$(npm run -s keys -- create --export)"`.
    const exported = await runNode([join(ROOT, 'scripts', 'keys.js'), 'create', '--name', 'shell', '--export'], cliEnv);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toMatch(/^export LLM_SERVER_KEY=sk-[A-Za-z0-9_-]+\n$/);

    // Elsewhere than localhost:8000 without SERVER_URL: an error that says what to set.
    const lost = await runNode([join(ROOT, 'scripts', 'keys.js'), 'list'], { DATA_DIR: dataDir, PORT: '1' });
    expect(lost.code).toBe(1);
    expect(lost.stderr).toMatch(/Cannot reach the server at http:\/\/127\.0\.0\.1:1.*SERVER_URL=/s);

    const listed = await runNode([join(ROOT, 'scripts', 'keys.js'), 'list'], cliEnv);
    expect(listed.code).toBe(0);
    const list = JSON.parse(listed.stdout) as { data: Array<{ id: string; name: string }> };
    expect(list.data).toEqual(expect.arrayContaining([expect.objectContaining({ id: key.id, name: 'quickstart' })]));

    server.proc.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.output()).toContain('"msg"');
    expect(server.output()).not.toContain(token);

    // At info, startup is one line that says where everything is; Nest's module and route
    // mapping is at debug.
    const startup = server
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg: string; level: string })
      .filter((entry) => entry.msg !== 'shutting down: draining requests' && !/^shutdown|final flush/.test(entry.msg));
    const ready = startup.filter((entry) => entry.msg.startsWith('llm-server ready at'));
    expect(ready).toHaveLength(1);
    expect(ready[0].msg).toBe(
      `llm-server ready at ${base} (admin console ${base}/admin/ui; ` +
        `admin token in ${tokenFile} (generated now: ADMIN_TOKEN is not set))`,
    );
    expect(startup.filter((entry) => /Mapped \{|dependencies initialized|RoutesResolver/.test(entry.msg))).toEqual([]);
  });
});

describe('README quickstart: `npm start` on a checkout without dist/', () => {
  it('builds the server, the embedded database template and the console first, then serves', async () => {
    // A checkout's files, copied (the build writes dist/ beside them); node_modules as installed.
    const dir = freshDataDir();
    for (const entry of [
      'src',
      'console',
      'scripts',
      'migrations',
      'config',
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
    ]) {
      cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
    }
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), HOST: '127.0.0.1' };
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'ADMIN_TOKEN', 'DATA_DIR', 'MODELS_FILE', 'NODE_ENV', 'API_BASE'])
      delete env[name];
    const child = spawn('npm', ['start'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const deadline = Date.now() + 150_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`npm start exited ${child.exitCode}:\n${output}`);
        const up = await fetch(`http://127.0.0.1:${port}/healthz`).then(
          (res) => res.status === 200,
          () => false,
        );
        if (up) break;
        if (Date.now() > deadline) throw new Error(`npm start did not listen within 150 s:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(output).toContain('Building the server and the admin console');
      for (const built of [
        'main.js',
        '.build-stamp',
        join('pglite-template', 'PG_VERSION'),
        join('admin-ui', 'index.html'),
      ]) {
        expect({ built, exists: existsSync(join(dir, 'dist', built)) }).toEqual({ built, exists: true });
      }
      // The new DATA_DIR's database came from the template (no initdb): it is the template's copy.
      expect(existsSync(join(dir, 'data', 'pglite', 'PG_VERSION'))).toBe(true);
      expect((await fetch(`http://127.0.0.1:${port}/admin/ui`)).status).toBe(200);
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGTERM');
      await exited;
    }
  });
});

describe('README: npm run migration:run', () => {
  it('applies every migration to a fresh DATA_DIR, then reports none pending', async () => {
    const env = { DATA_DIR: freshDataDir(), MODELS_FILE: FIXTURE_MODELS, ADMIN_TOKEN: TEST_ADMIN_TOKEN };
    // What `npm run migration:run` runs (dist/migration-run.js), from the suite's own build of src/.
    const script = [compiledEntry('migration-run')];

    const first = await runNode(script, env);
    expect(first.code).toBe(0);
    // Migration names end with the file's 13-digit timestamp (TypeORM class names).
    const timestamps = readdirSync(join(ROOT, 'migrations'))
      .map((file) => /^(\d{13})-.+\.sql$/.exec(file)?.[1])
      .filter((ts): ts is string => ts !== undefined);
    expect(timestamps.length).toBeGreaterThan(0);
    const applied = /^applied: (.+)$/m.exec(first.stdout);
    expect(applied).not.toBeNull();
    const names = applied![1].split(', ');
    expect(names).toHaveLength(timestamps.length);
    for (const ts of timestamps) expect(names.some((name) => name.endsWith(ts))).toBe(true);

    const second = await runNode(script, env);
    expect(second.code).toBe(0);
    expect(second.stdout.trim()).toBe('no pending migrations');
  });
});
