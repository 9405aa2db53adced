/**
 * A Lua script run by its SHA1 (EVALSHA), loaded with EVAL the first time a server lacks it (on a
 * cluster, each node the first time one of its slots runs it).
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from './redis.module';

export class RedisScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: RedisClient, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
