#!/usr/bin/env node
// No usage lost across a stop: generations made right before the server is stopped, and streams
// still running when it is, must all be in the usage ledger once it runs again.
//
//   node .ci/drain-check.js generate BASE ADMIN_TOKEN STATE_FILE -- STOP_COMMAND...
//     creates a key; makes COMPLETED generations and waits for them; starts STREAMS long streaming
//     generations and, once the first has sent its first event, runs STOP_COMMAND (e.g. `docker stop`)
//     while they run; requires every generation to finish with 200 and its final body (the drain
//     lets streams end); writes the key id and the reported usage to STATE_FILE. Whether the
//     streams were still open when the server took the signal is the server's to say (its
//     "shutting down" log line counts them): .ci/container checks that line, since a stream's end
//     seen by this client says nothing certain about when the signal arrived.
//   node .ci/drain-check.js verify BASE ADMIN_TOKEN STATE_FILE
//     (after a restart on the same data) requires the key's ledger and current-period usage to
//     hold exactly those requests and tokens.
//
// Every generation sends `Cache-Control: no-store` and a prompt of its own, so each one is a
// backend generation with real token usage. Plain Node (fetch), no dependencies.
'use strict';
const { spawn } = require('node:child_process');
const { readFileSync, writeFileSync } = require('node:fs');

const COMPLETED = 4;
// More streams than the tiny model's sequences (4): the ones queued behind the first are surely
// still open when the stop arrives (the first round alone can end within docker's delivery).
const STREAMS = 12;
const MAX_NEW_TOKENS = 64;
// Long enough that the streams are still running when the stop arrives (the tiny model makes a
// few hundred tokens a second here).
const STREAM_MAX_NEW_TOKENS = 512; // the most config/models.yaml allows for tiny

const [mode, base, adminToken, stateFile, separator, ...stopCommand] = process.argv.slice(2);
const fail = (message) => {
  console.error(`drain-check: FAILED: ${message}`);
  process.exit(1);
};
const log = (message) => console.log(`drain-check: ${message}`);

async function api(method, path, { token = adminToken, body, headers = {} } = {}) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return response;
}

async function json(method, path, options) {
  const response = await api(method, path, options);
  const text = await response.text();
  if (!response.ok) fail(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const generationBody = (i, stream) => ({
  prompt: `drain check ${process.pid} ${i}: once upon a time`,
  max_new_tokens: stream ? STREAM_MAX_NEW_TOKENS : MAX_NEW_TOKENS,
  stream,
});
const noStore = { 'cache-control': 'no-store' };

async function completed(key, i) {
  const body = await json('POST', '/v1/generate', { token: key, body: generationBody(i, false), headers: noStore });
  return body.usage;
}

/** A streaming generation; `started` resolves at its first event, the promise at [DONE]. */
function streaming(key, i) {
  let onStart;
  const started = new Promise((resolve) => (onStart = resolve));
  const done = (async () => {
    const response = await api('POST', '/v1/generate', { token: key, body: generationBody(i, true), headers: noStore });
    if (response.status !== 200) fail(`stream ${i}: ${response.status} ${await response.text()}`);
    const decoder = new TextDecoder();
    let buffer = '';
    let final = null;
    let sawDone = false;
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.replace(/^data: ?/, '');
        onStart();
        if (data === '[DONE]') sawDone = true;
        else if (JSON.parse(data).done) final = JSON.parse(data);
      }
    }
    if (!sawDone || !final) fail(`stream ${i} ended without its final body and [DONE] (cut off by the stop?)`);
    if (final.error) fail(`stream ${i} ended with an error: ${JSON.stringify(final.error)}`);
    return final.usage;
  })();
  done.catch(() => onStart());
  return { started, done };
}

function runStop() {
  return new Promise((resolve, reject) => {
    const child = spawn(stopCommand[0], stopCommand.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${stopCommand.join(' ')} exited ${code}`))));
  });
}

const total = (usages) =>
  usages.reduce(
    (sum, u) => ({ requests: sum.requests + 1, prompt: sum.prompt + u.prompt_tokens, completion: sum.completion + u.completion_tokens }),
    { requests: 0, prompt: 0, completion: 0 },
  );

async function generate() {
  if (separator !== '--' || stopCommand.length === 0) fail('usage: generate BASE TOKEN STATE_FILE -- STOP_COMMAND...');
  const key = await json('POST', '/admin/keys', { body: { name: 'drain-check', rpm_limit: 1000 } });
  const usages = [];
  for (let i = 0; i < COMPLETED; i++) usages.push(await completed(key.key, i));
  const streams = Array.from({ length: STREAMS }, (_, i) => streaming(key.key, COMPLETED + i));
  await Promise.race(streams.map((s) => s.started));
  const stop = runStop();
  const stopSent = Date.now();
  let endedAfterStop = 0;
  const finished = await Promise.all(
    streams.map((s) =>
      s.done.then((usage) => {
        // A margin for the engine to deliver the signal: a stream that ended within it may have
        // ended before the server saw SIGTERM.
        if (Date.now() > stopSent + 250) endedAfterStop++;
        return usage;
      }),
    ),
  );
  await stop;
  usages.push(...finished);
  const sum = total(usages);
  writeFileSync(stateFile, JSON.stringify({ id: key.id, ...sum }));
  log(
    `${COMPLETED} generations before the stop, ${STREAMS} streams started when it was sent ` +
      `(${endedAfterStop} of them ended over 250 ms after it): ${sum.requests} requests, ` +
      `${sum.prompt} + ${sum.completion} tokens`,
  );
}

async function verify() {
  const expected = JSON.parse(readFileSync(stateFile, 'utf8'));
  const ledger = await json('GET', `/admin/keys/${expected.id}/usage`);
  const rows = ledger.data;
  const got = {
    requests: rows.reduce((n, r) => n + r.requests, 0),
    cached: rows.reduce((n, r) => n + r.cached_requests, 0),
    prompt: rows.reduce((n, r) => n + r.prompt_tokens, 0),
    completion: rows.reduce((n, r) => n + r.completion_tokens, 0),
  };
  const keyUsage = (await json('GET', `/admin/keys/${expected.id}`)).usage;
  const want = `${expected.requests} requests, ${expected.prompt} + ${expected.completion} tokens`;
  const have = `${got.requests} requests (${got.cached} cached), ${got.prompt} + ${got.completion} tokens`;
  if (
    got.requests !== expected.requests ||
    got.cached !== 0 ||
    got.prompt !== expected.prompt ||
    got.completion !== expected.completion
  ) {
    fail(`the ledger after the restart holds ${have}; the responses reported ${want}`);
  }
  if (keyUsage.requests !== expected.requests || keyUsage.tokens !== expected.prompt + expected.completion) {
    fail(`the key's period usage after the restart is ${JSON.stringify(keyUsage)}; expected ${want}`);
  }
  log(`after the restart the ledger and the key's period usage hold all of it: ${want}`);
}

(mode === 'generate' ? generate() : mode === 'verify' ? verify() : Promise.reject(new Error(`unknown mode ${mode}`))).catch(
  (error) => fail(error.stack ?? String(error)),
);
