/** Resolves a presented API key to its settings: from the in-memory cache, else one indexed query. */
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { hashApiKey } from './api-key.crypto';
import type { AuthenticatedKey } from './auth.types';
import { ApiKeyEntity } from './entities/api-key.entity';
import { KeyCache } from './key-cache';

/** Longer inputs cannot be keys; refusing them early avoids hashing arbitrary header blobs. */
const MAX_KEY_LENGTH = 256;

export function toAuthenticatedKey(row: ApiKeyEntity): AuthenticatedKey {
  return {
    id: row.id,
    name: row.name,
    rpmLimit: row.rpmLimit,
    tpmLimit: row.tpmLimit,
    monthlyQuota: row.monthlyQuota,
    monthlyTokenQuota: row.monthlyTokenQuota,
    models: row.models,
    active: row.active,
    expiresAt: row.expiresAt,
    revokedAt: row.revokedAt,
  };
}

export function isUsable(key: AuthenticatedKey, now: Date): boolean {
  return key.active && key.revokedAt === null && (key.expiresAt === null || key.expiresAt > now);
}

@Injectable()
export class ApiKeyService {
  constructor(
    @InjectRepository(ApiKeyEntity) private readonly keys: Repository<ApiKeyEntity>,
    private readonly cache: KeyCache,
    private readonly clock: Clock,
  ) {}

  /** The key's settings when it exists and is usable now; null for unknown, inactive, revoked or expired. */
  async authenticate(plaintext: string): Promise<AuthenticatedKey | null> {
    if (plaintext.length > MAX_KEY_LENGTH) return null;
    const now = this.clock.now();
    const hash = hashApiKey(plaintext);
    let key = this.cache.get(hash, now.getTime());
    if (!key) {
      const epoch = this.cache.epoch;
      const row = await this.keys.findOne({ where: { keyHash: hash } });
      if (!row) return null;
      key = toAuthenticatedKey(row);
      this.cache.set(hash, key, now.getTime(), epoch);
    }
    return isUsable(key, now) ? key : null;
  }
}
