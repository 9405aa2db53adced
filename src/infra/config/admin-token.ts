/**
 * Where the admin token comes from. Production demands a strong ADMIN_TOKEN. Elsewhere, when
 * it is unset, a random token is generated once and kept in DATA_DIR/admin-token (mode 0600)
 * so a newcomer can create keys (`npm run keys -- create`) without editing any file, and the
 * token never has to appear in a log line.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './config.errors';

export const MIN_ADMIN_TOKEN_LENGTH = 32;
const MIN_DISTINCT_CHARACTERS = 10;

export function adminTokenFile(dataDir: string): string {
  return join(dataDir, 'admin-token');
}

export function checkTokenStrength(token: string): string | null {
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) {
    return `must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`;
  }
  if (new Set(token).size < MIN_DISTINCT_CHARACTERS) {
    return `is too repetitive (use at least ${MIN_DISTINCT_CHARACTERS} distinct characters, e.g. openssl rand -hex 32)`;
  }
  return null;
}

export function resolveAdminToken(
  fromEnv: string | null,
  nodeEnv: string,
  dataDir: string,
): { token: string; source: 'env' | { file: string; created: boolean } } {
  if (fromEnv !== null) {
    const weakness = checkTokenStrength(fromEnv);
    if (weakness && nodeEnv === 'production') throw new ConfigError(`ADMIN_TOKEN: ${weakness}`);
    return { token: fromEnv, source: 'env' };
  }
  if (nodeEnv === 'production') {
    throw new ConfigError('ADMIN_TOKEN: must be set when NODE_ENV=production');
  }
  const file = adminTokenFile(dataDir);
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token.length > 0) return { token, source: { file, created: false } };
  }
  const token = randomBytes(32).toString('base64url');
  try {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
  } catch (error) {
    throw new ConfigError(
      `ADMIN_TOKEN: not set, and ${file} could not be written (${(error as NodeJS.ErrnoException).code}); set ADMIN_TOKEN`,
    );
  }
  return { token, source: { file, created: true } };
}
