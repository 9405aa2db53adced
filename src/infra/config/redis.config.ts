/**
 * Where Redis is (CONFIG.md): one server by REDIS_URL, a Redis Cluster by its seed nodes
 * (REDIS_CLUSTER_NODES), or the master a set of Sentinels watches (REDIS_SENTINELS and
 * REDIS_SENTINEL_NAME). At most one of the three; the password and TLS a URL would carry come
 * from REDIS_PASSWORD and REDIS_TLS in the other two modes.
 */
import { ConfigError } from './config.errors';
import { type Env, readBool, readOptionalString, readRedisUrl } from './env.parsers';

export interface HostPort {
  host: string;
  port: number;
}

export type RedisTarget =
  | { kind: 'url'; url: string }
  | { kind: 'cluster'; nodes: HostPort[]; password: string | null; tls: boolean }
  | { kind: 'sentinel'; sentinels: HostPort[]; name: string; password: string | null; tls: boolean };

/** `host:port[,host:port...]`; IPv6 hosts in brackets (`[::1]:6379`). */
export function readHostPorts(env: Env, name: string): HostPort[] | null {
  const value = readOptionalString(env, name);
  if (value === null) return null;
  return value.split(',').map((entry) => {
    const match = /^\s*(\[[^\]]+\]|[^:\s[\]]+):(\d{1,5})\s*$/.exec(entry);
    const port = match ? Number(match[2]) : 0;
    if (!match || port < 1 || port > 65535) {
      throw new ConfigError(`${name}: expected comma-separated host:port entries, got "${entry.trim()}"`);
    }
    return { host: match[1].replace(/^\[|\]$/g, ''), port };
  });
}

export function readRedisTarget(env: Env): RedisTarget | null {
  const url = readRedisUrl(env, 'REDIS_URL');
  const nodes = readHostPorts(env, 'REDIS_CLUSTER_NODES');
  const sentinels = readHostPorts(env, 'REDIS_SENTINELS');
  const sentinelName = readOptionalString(env, 'REDIS_SENTINEL_NAME');
  const given = [url && 'REDIS_URL', nodes && 'REDIS_CLUSTER_NODES', sentinels && 'REDIS_SENTINELS'].filter(Boolean);
  if (given.length > 1) throw new ConfigError(`${given.join(', ')}: set only one way to reach Redis`);
  if (sentinelName !== null && !sentinels) throw new ConfigError('REDIS_SENTINEL_NAME: needs REDIS_SENTINELS');
  const password = readOptionalString(env, 'REDIS_PASSWORD');
  const tls = readBool(env, 'REDIS_TLS', false);
  if (url) {
    if (password !== null || tls) {
      throw new ConfigError('REDIS_PASSWORD, REDIS_TLS: with REDIS_URL put them in the URL (rediss://:password@host)');
    }
    return { kind: 'url', url };
  }
  if (nodes) return { kind: 'cluster', nodes, password, tls };
  if (sentinels) {
    if (sentinelName === null) throw new ConfigError('REDIS_SENTINELS: needs REDIS_SENTINEL_NAME (the master name)');
    return { kind: 'sentinel', sentinels, name: sentinelName, password, tls };
  }
  if (password !== null || tls)
    throw new ConfigError('REDIS_PASSWORD, REDIS_TLS: need REDIS_CLUSTER_NODES or REDIS_SENTINELS');
  return null;
}
