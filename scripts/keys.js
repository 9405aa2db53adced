#!/usr/bin/env node
// Key administration from the command line, through the running server's admin API.
//   npm run keys -- create --name me [--rpm 60] [--quota 1000] [--token-quota 100000] [--models a,b] [--expires 2027-01-01T00:00:00Z] [--export]
//   eval "$(npm run --silent keys -- create --name me --export)"    # sets LLM_SERVER_KEY in this shell
//   npm run keys -- list
//   npm run keys -- revoke <id>
//   npm run keys -- rotate <id>
// The admin token is ADMIN_TOKEN, else the token the server generated in DATA_DIR/admin-token.
// The server is SERVER_URL, else http://127.0.0.1:$PORT (8000). `--export` prints only
// `export LLM_SERVER_KEY=sk-…` on stdout (the key's other fields go to stderr).
const { existsSync, readFileSync } = require('node:fs');
const { join, resolve } = require('node:path');

function adminToken() {
  if (process.env.ADMIN_TOKEN) return process.env.ADMIN_TOKEN.trim();
  const file = join(resolve(process.env.DATA_DIR || './data'), 'admin-token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  console.error(`No admin token: set ADMIN_TOKEN, or start the server once (npm start) so it writes ${file}.`);
  process.exit(2);
}

/** Flags that take no value. */
const SWITCHES = new Set(['export']);

function parseFlags(args) {
  const flags = {};
  for (let i = 0; i < args.length; i += 1) {
    if (!args[i].startsWith('--')) continue;
    const name = args[i].slice(2);
    if (SWITCHES.has(name)) {
      flags[name] = true;
      continue;
    }
    flags[name] = args[i + 1];
    i += 1;
  }
  return flags;
}

function intFlag(flags, name) {
  if (flags[name] === undefined) return undefined;
  if (!/^\d+$/.test(flags[name])) {
    console.error(`--${name} must be a whole number`);
    process.exit(2);
  }
  return Number(flags[name]);
}

async function call(method, path, body) {
  const base = process.env.SERVER_URL || `http://127.0.0.1:${process.env.PORT || 8000}`;
  let res;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${adminToken()}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch {
    console.error(
      `Cannot reach the server at ${base}: is it running (npm start)? ` +
        'If it listens elsewhere, say where: SERVER_URL=http://host:port npm run keys -- …',
    );
    process.exit(1);
  }
  const text = await res.text();
  if (!res.ok) {
    console.error(`${res.status}: ${text}`);
    process.exit(1);
  }
  return text ? JSON.parse(text) : null;
}

(async () => {
  const [command, ...rest] = process.argv.slice(2);
  const flags = parseFlags(rest);
  if (command === 'create') {
    const body = {
      name: flags.name || 'cli key',
      rpm_limit: intFlag(flags, 'rpm'),
      tpm_limit: intFlag(flags, 'tpm'),
      monthly_quota: intFlag(flags, 'quota'),
      monthly_token_quota: intFlag(flags, 'token-quota'),
      models: flags.models ? flags.models.split(',') : undefined,
      expires_at: flags.expires,
    };
    const created = await call('POST', '/admin/keys', body);
    if (flags.export) {
      const { key, ...fields } = created;
      console.error(JSON.stringify(fields, null, 2));
      console.log(`export LLM_SERVER_KEY=${key}`);
      return;
    }
    console.log(JSON.stringify(created, null, 2));
    console.error(`\nYour API key (shown only now): ${created.key}`);
  } else if (command === 'list') {
    console.log(JSON.stringify(await call('GET', '/admin/keys?limit=100'), null, 2));
  } else if ((command === 'revoke' || command === 'rotate') && rest[0]) {
    const result = await call(
      command === 'revoke' ? 'DELETE' : 'POST',
      `/admin/keys/${rest[0]}${command === 'rotate' ? '/rotate' : ''}`,
    );
    console.log(result ? JSON.stringify(result, null, 2) : `revoked ${rest[0]}`);
  } else {
    console.error(
      'usage: npm run keys -- create --name NAME [--rpm N] [--tpm N] [--quota N] [--token-quota N] [--models a,b] [--expires ISO] [--export]\n       npm run keys -- list | revoke ID | rotate ID\n(the server: SERVER_URL, else http://127.0.0.1:$PORT, PORT default 8000)',
    );
    process.exit(2);
  }
})();
