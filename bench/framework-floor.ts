/**
 * What the HTTP stack costs before the gateway does anything: CPU time per request (user +
 * system, from /proc) of three servers answering the same POST with a small JSON body, each in
 * a process of its own under the same autocannon load:
 * - `node`: node:http, JSON.parse and JSON.stringify, nothing else (the floor of Node itself);
 * - `nest`: a NestJS 12 app on Express with one POST route and @Body() (the floor of the stack);
 * - `gateway`: the gateway (dist/main.js, embedded) answering a cache hit, its cheapest path.
 * CPU per request hardly depends on what else the machine runs, unlike latency and throughput.
 *
 *   node -r @swc-node/register bench/framework-floor.ts [--requests 8000] [--connections 8]
 *
 * Writes bench/results/framework-floor.json.
 */
import 'reflect-metadata';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Body, Controller, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import autocannon from 'autocannon';
import { freePort } from '../test/harness/redis-server';
import { arg, writeResult } from './lib';
import { ROOT, startGateway, stopper } from './gateway-process';

const REQUESTS = Number(arg('requests', '8000'));
const CONNECTIONS = Number(arg('connections', '8'));
const ADMIN_TOKEN = 'framework-floor-admin-token-0123456789abcdef';
const ANSWER = { id: 'gen-x', model: 'm', output: 'alpha beta gamma delta', cached: true, finish_reason: 'stop' };

@Controller()
class FloorController {
  @Post('/v1/generate')
  generate(@Body() body: { prompt: string }) {
    return { ...ANSWER, prompt_chars: body.prompt.length };
  }
}

@Module({ controllers: [FloorController] })
class FloorModule {}

/** Child mode: serve as `node` or `nest` on the given port. */
async function serve(kind: string, port: number): Promise<void> {
  if (kind === 'node') {
    createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        const parsed = JSON.parse(body) as { prompt: string };
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ ...ANSWER, prompt_chars: parsed.prompt.length }));
      });
    }).listen(port, '127.0.0.1');
    return;
  }
  const app = await NestFactory.create(FloorModule, { logger: false });
  await app.listen(port, '127.0.0.1');
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (100/s)
}

async function waitFor(url: string, init: RequestInit): Promise<void> {
  for (let i = 0; i < 600; i += 1) {
    try {
      if ((await fetch(url, init)).status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer`);
}

async function measure(child: ChildProcess, url: string, headers: Record<string, string>) {
  const load = (amount: number) =>
    autocannon({
      url,
      connections: CONNECTIONS,
      amount,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ prompt: 'the same question', max_new_tokens: 16 }),
    });
  await load(2000); // warm-up: JIT
  const before = cpuTicks(child.pid!);
  const result = await load(REQUESTS);
  const cpuUs = ((cpuTicks(child.pid!) - before) * 10_000) / REQUESTS;
  return {
    cpu_us_per_request: Math.round(cpuUs),
    requests_per_second: Math.round(result.requests.total / result.duration),
    non2xx: result.non2xx,
  };
}

async function floor(kind: 'node' | 'nest') {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['-r', '@swc-node/register', __filename, '--serve', kind, '--port', String(port)],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  );
  const url = `http://127.0.0.1:${port}/v1/generate`;
  try {
    await waitFor(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"x"}' });
    return await measure(child, url, {});
  } finally {
    await stopper(child)();
  }
}

async function gateway() {
  const {
    child,
    url: base,
    stop: stopGateway,
  } = await startGateway('default_model: m\nmodels:\n  - name: m\n    provider: mock\n', { adminToken: ADMIN_TOKEN });
  try {
    const created = await fetch(`${base}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'floor', rpm_limit: 2_000_000_000 }),
    });
    const { key } = (await created.json()) as { key: string };
    return await measure(child, `${base}/v1/generate`, { 'x-api-key': key });
  } finally {
    await stopGateway();
  }
}

async function main(): Promise<void> {
  const serveKind = arg('serve', '');
  if (serveKind) return serve(serveKind, Number(arg('port', '0')));
  const node = await floor('node');
  const nest = await floor('nest');
  const hit = await gateway();
  writeResult('framework-floor', {
    requests: REQUESTS,
    connections: CONNECTIONS,
    node,
    nest,
    gateway_cache_hit: hit,
    nest_over_node: Math.round((nest.cpu_us_per_request / node.cpu_us_per_request) * 10) / 10,
    gateway_over_nest: Math.round((hit.cpu_us_per_request / nest.cpu_us_per_request) * 10) / 10,
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
