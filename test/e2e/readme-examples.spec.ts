/**
 * The newcomer's path, run as written: every shell, TypeScript and Python example of the README's
 * quickstart and of docs/api-guide.md's client sections is read out of the Markdown itself (so the
 * docs cannot drift from what works) and run against the default install: `npm start` in a fresh
 * directory holding only this checkout's files (package.json, node_modules, dist, config,
 * scripts, migrations) and an empty ./data, with no PostgreSQL, Redis or ADMIN_TOKEN.
 *
 * What is adapted, and only this: `localhost:8000` becomes the test's free port; `curl` fails on
 * an HTTP error (`--fail-with-body`); a TypeScript or Python block that uses `client` without
 * making it starts with the lines that made it in the block before. Not run: `npm ci` and
 * `npm test` of the quickstart's first block (CI runs them on a clean clone); its text is
 * checked instead.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { transformSync } from '@swc/core';
import { freePort } from '../harness/redis-server';
import { ROOT } from '../harness/process';

jest.setTimeout(180_000);

interface Block {
  file: string;
  section: string;
  line: number;
  lang: string;
  code: string;
}

/** Fenced code blocks of a Markdown file, each with the heading it sits under. */
function codeBlocks(file: string): Block[] {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  let section = '';
  for (let i = 0; i < lines.length; i++) {
    const heading = /^#+\s+(.*)$/.exec(lines[i]);
    if (heading) section = heading[1].trim();
    const fence = /^```(\w*)\s*$/.exec(lines[i]);
    if (!fence) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].startsWith('```'); i++) body.push(lines[i]);
    blocks.push({ file, section, line: start + 1, lang: fence[1], code: body.join('\n') });
  }
  return blocks;
}

/** The sections whose examples a newcomer copies, per file. */
const RUN: Record<string, string[]> = {
  'README.md': ['Quickstart', 'One call of each API', 'OpenAI Responses API', 'Anthropic Messages API'],
  'docs/api-guide.md': [
    'Using it from the OpenAI SDKs and curl',
    'Tool calling',
    'Structured outputs',
    'Embeddings',
    'Admin API',
  ],
};
const RUNNABLE = new Set(['sh', 'ts', 'python']);
const QUICKSTART = 'npm ci && npm start\nnpm test';

const examples = Object.entries(RUN).flatMap(([file, sections]) =>
  codeBlocks(file).filter((block) => sections.includes(block.section) && RUNNABLE.has(block.lang)),
);

/** A Python with the official `openai` package: README_PYTHON (CI), else python3 if it has it. */
function findPython(): string | null {
  for (const candidate of [process.env.README_PYTHON, 'python3']) {
    if (!candidate) continue;
    if (spawnSync(candidate, ['-c', 'import openai'], { stdio: 'ignore' }).status === 0) return candidate;
  }
  return null;
}
const python = findPython();
const pythonRequired = process.env.README_PYTHON_REQUIRED === 'true';

// Against API_BASE there is a server already: this test is about starting the default install.
const describeLocal = process.env.API_BASE ? describe.skip : describe;

describeLocal('README and docs/api-guide.md examples, run as written against `npm start`', () => {
  let dir: string;
  let port: number;
  let server: ChildProcess;
  let serverOutput = '';
  const env = (): NodeJS.ProcessEnv => {
    // The default install: nothing of the machine's own configuration.
    const clean = { ...process.env };
    for (const name of [
      'DATABASE_URL',
      'REDIS_URL',
      'ADMIN_TOKEN',
      'API_BASE',
      'DATA_DIR',
      'MODELS_FILE',
      'NODE_ENV',
      'LOG_LEVEL',
      'SERVER_URL',
    ]) {
      delete clean[name];
    }
    return { ...clean, PORT: String(port) };
  };
  const adapt = (code: string) => code.replaceAll('localhost:8000', `localhost:${port}`);
  const keyFile = () => join(dir, '.llm-server-key');
  const key = () => {
    try {
      return readFileSync(keyFile(), 'utf8');
    } catch {
      return '';
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'llm-readme-'));
    for (const entry of [
      'package.json',
      'package-lock.json',
      'node_modules',
      'dist',
      'config',
      'scripts',
      'migrations',
    ]) {
      symlinkSync(join(ROOT, entry), join(dir, entry));
    }
    mkdirSync(join(dir, 'data'));
    port = await freePort();
    const quickstart = examples.find((block) => block.section === 'Quickstart')!;
    expect(quickstart.code).toBe(QUICKSTART);
    // The second half of the quickstart's first line, as written.
    server = spawn('npm', ['start'], { cwd: dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    server.stdout!.on('data', (chunk: Buffer) => (serverOutput += chunk.toString()));
    server.stderr!.on('data', (chunk: Buffer) => (serverOutput += chunk.toString()));
    const deadline = Date.now() + 150_000;
    for (;;) {
      if (server.exitCode !== null) throw new Error(`npm start exited ${server.exitCode}:\n${serverOutput}`);
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (res) => res.status === 200,
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`npm start was not ready in 150 s:\n${serverOutput}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      process.kill(-server.pid!, 'SIGTERM'); // npm and the server under it
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('finds the examples: the quickstart is exactly its two lines, and every section has runnable blocks', () => {
    for (const [file, sections] of Object.entries(RUN)) {
      for (const section of sections) {
        expect({ file, section, blocks: examples.some((b) => b.file === file && b.section === section) }).toEqual({
          file,
          section,
          blocks: true,
        });
      }
    }
    expect(examples.find((block) => block.section === 'Quickstart')!.code).toBe(QUICKSTART);
  });

  it('GET / points at the API, the console and the docs', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ service: 'llm-server', console: '/admin/ui' });
  });

  /** Shell blocks in document order: the quickstart's key (LLM_SERVER_KEY) carries to later ones. */
  const shell = examples.filter((block) => block.lang === 'sh' && block.code !== QUICKSTART);
  it.each(shell.map((block) => [`${block.file}:${block.line} (${block.section})`, block]))('sh %s', (_name, block) => {
    const script = [
      'set -euo pipefail',
      'curl() { command curl --fail-with-body --max-time 60 "$@"; }',
      adapt(block.code),
      `printf '%s' "\${LLM_SERVER_KEY:-}" > ${JSON.stringify(keyFile())}`,
    ].join('\n');
    const run = spawnSync('bash', ['-c', script], {
      cwd: dir,
      env: { ...env(), ...(key() ? { LLM_SERVER_KEY: key() } : {}) },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect({ code: run.status, stderr: run.stderr, stdout: run.stdout.slice(0, 2000) }).toMatchObject({ code: 0 });
    expect(key()).toMatch(/^sk-/);
  });

  /** A block that uses `client` without making it gets the lines that made it in the block before. */
  function withClient(blocks: Block[], pattern: RegExp): { block: Block; code: string }[] {
    let prelude = '';
    return blocks.map((block) => {
      const lines = block.code.split('\n');
      const made = lines.findIndex((line) => pattern.test(line));
      if (made >= 0) {
        prelude = lines.slice(0, made + 1).join('\n');
        return { block, code: block.code };
      }
      return { block, code: `${prelude}\n${block.code}` };
    });
  }

  const typescript = (['README.md', 'docs/api-guide.md'] as const).flatMap((file) =>
    withClient(
      examples.filter((block) => block.file === file && block.lang === 'ts'),
      /^const client = /,
    ),
  );
  it.each(typescript.map((entry) => [`${entry.block.file}:${entry.block.line} (${entry.block.section})`, entry]))(
    'ts %s',
    (name, entry) => {
      const js = transformSync(adapt(entry.code), {
        filename: 'example.mts',
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'es6' },
      }).code;
      const file = join(dir, `example-${entry.block.line}.mjs`);
      writeFileSync(file, js);
      const run = spawnSync(process.execPath, [file], {
        cwd: dir,
        env: { ...env(), LLM_SERVER_KEY: key() },
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect({ name, code: run.status, stderr: run.stderr }).toMatchObject({ name, code: 0 });
    },
  );

  const pythonBlocks = withClient(
    examples.filter((block) => block.lang === 'python'),
    /^client = /,
  );
  const pythonCases = pythonBlocks.map((entry): [string, { block: Block; code: string }] => [
    `${entry.block.file}:${entry.block.line} (${entry.block.section})`,
    entry,
  ]);
  if (python || pythonRequired) {
    it.each(pythonCases)('python %s', (name, entry) => {
      expect({ python: python ?? 'none with the openai package (README_PYTHON)' }).toEqual({
        python: expect.any(String),
      });
      const run = spawnSync(python!, ['-c', adapt(entry.code)], {
        cwd: dir,
        env: { ...env(), LLM_SERVER_KEY: key() },
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect({ name, code: run.status, stderr: run.stderr }).toMatchObject({ name, code: 0 });
    });
  } else {
    // Said, not hidden: without Python's openai package these blocks cannot run here.
    it.skip.each(pythonCases)('python %s (skipped: no python3 with the openai package; set README_PYTHON)', () => {});
  }
});
