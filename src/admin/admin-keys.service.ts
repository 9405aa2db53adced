/** Key administration: create, list, read, change, rotate and revoke keys. */
import { Inject, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { FindOptionsWhere, Repository } from 'typeorm';
import { AppError, invalidRequest } from '../common/app-error';
import { Clock } from '../common/clock';
import type { AppConfig } from '../config/app.config';
import { APP_CONFIG } from '../config/config.module';
import { generateApiKey } from '../auth/api-key.crypto';
import { ApiKeyEntity } from '../auth/entities/api-key.entity';
import { KeyInvalidation } from '../auth/key-invalidation';
import { monthStartUtc, nextMonthStartUtc } from '../quota/quota-period';
import { type DailyUsage, UsageLedgerService } from '../usage/usage-ledger.service';
import type { CreateKeyDto, KeyLimitsDto, UpdateKeyDto } from './dto/key-fields.dto';
import { type KeyUsageView, type KeyView, toKeyView, toUsageView } from './dto/key-view';
import { decodeCursor, encodeCursor, parseDayRange, parseLimit, parseSearch } from './admin-query';
import { keySearchCondition } from './key-search';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type CreatedKeyView = KeyView & { key: string };

@Injectable()
export class AdminKeysService {
  constructor(
    @InjectRepository(ApiKeyEntity) private readonly keys: Repository<ApiKeyEntity>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly invalidation: KeyInvalidation,
    private readonly usage: UsageLedgerService,
    private readonly clock: Clock,
  ) {}

  async create(dto: CreateKeyDto): Promise<CreatedKeyView> {
    const now = this.clock.now();
    const material = generateApiKey();
    const row = this.keys.create({
      name: dto.name,
      keyPrefix: material.prefix,
      keyHash: material.hash,
      active: true,
      createdAt: now,
      updatedAt: now,
      revokedAt: null,
      quotaPeriodStart: monthStartUtc(now),
      quotaResetAt: nextMonthStartUtc(now),
      quotaRequestsUsed: 0,
      quotaTokensUsed: 0,
      ...this.limitsFrom(dto, now),
    });
    const saved = await this.keys.save(row);
    return { ...toKeyView(saved, now), key: material.plaintext };
  }

  async list(
    limitParam: unknown,
    cursorParam: unknown,
    searchParam?: unknown,
  ): Promise<{ data: KeyView[]; next_cursor: string | null }> {
    const limit = parseLimit(limitParam);
    const after = decodeCursor(cursorParam);
    const search = parseSearch(searchParam);
    const query = this.keys
      .createQueryBuilder('k')
      .where(after ? '(k.created_at, k.id) > (:createdAt, :id)' : '1 = 1', after ?? {});
    if (search !== null) query.andWhere(keySearchCondition.sql, keySearchCondition.params(search));
    const rows = await query
      .orderBy('k.created_at', 'ASC')
      .addOrderBy('k.id', 'ASC')
      .limit(limit + 1)
      .getMany();
    const now = this.clock.now();
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      data: page.map((row) => toKeyView(row, now)),
      next_cursor: rows.length > limit && last ? encodeCursor(last.createdAt, last.id) : null,
    };
  }

  async get(id: string): Promise<KeyView & { usage: KeyUsageView }> {
    const row = await this.find(id);
    const now = this.clock.now();
    return { ...toKeyView(row, now), usage: toUsageView(row, now) };
  }

  async update(id: string, dto: UpdateKeyDto): Promise<KeyView> {
    const row = await this.find(id);
    const now = this.clock.now();
    if (dto.active === true && row.revokedAt !== null) {
      throw new AppError('key_revoked', 'a revoked key cannot be re-activated; create a new key');
    }
    if (dto.name !== undefined) row.name = dto.name;
    if (dto.active !== undefined) row.active = dto.active;
    Object.assign(row, this.limitsFrom(dto, now));
    row.updatedAt = now;
    const saved = await this.keys.save(row);
    await this.invalidation.announce(id);
    return toKeyView(saved, now);
  }

  async rotate(id: string): Promise<CreatedKeyView> {
    const row = await this.find(id);
    if (row.revokedAt !== null) throw new AppError('key_revoked', 'a revoked key cannot be rotated');
    const now = this.clock.now();
    const material = generateApiKey();
    row.keyHash = material.hash;
    row.keyPrefix = material.prefix;
    row.updatedAt = now;
    const saved = await this.keys.save(row);
    await this.invalidation.announce(id);
    return { ...toKeyView(saved, now), key: material.plaintext };
  }

  async revoke(id: string): Promise<void> {
    const row = await this.find(id);
    if (row.revokedAt === null) {
      const now = this.clock.now();
      row.active = false;
      row.revokedAt = now;
      row.updatedAt = now;
      await this.keys.save(row);
    }
    await this.invalidation.announce(id);
  }

  async dailyUsage(id: string, fromParam: unknown, toParam: unknown): Promise<{ data: DailyUsage[] }> {
    await this.find(id);
    const { from, to } = parseDayRange(fromParam, toParam, this.clock.now());
    return { data: await this.usage.daily(id, from, to) };
  }

  private async find(id: string): Promise<ApiKeyEntity> {
    const where: FindOptionsWhere<ApiKeyEntity> = { id };
    const row = UUID.test(id) ? await this.keys.findOne({ where }) : null;
    if (!row) throw new AppError('key_not_found', 'no API key with this id');
    return row;
  }

  /** The limit fields present in the request, checked against config and the clock. */
  private limitsFrom(dto: KeyLimitsDto, now: Date): Partial<ApiKeyEntity> {
    const changes: Partial<ApiKeyEntity> = {};
    if (dto.rpm_limit !== undefined) changes.rpmLimit = dto.rpm_limit;
    if (dto.tpm_limit !== undefined) changes.tpmLimit = dto.tpm_limit;
    if (dto.monthly_quota !== undefined) changes.monthlyQuota = dto.monthly_quota;
    if (dto.monthly_token_quota !== undefined) changes.monthlyTokenQuota = dto.monthly_token_quota;
    if (dto.models !== undefined) {
      const known = new Set(this.config.models.models.map((model) => model.name));
      const unknown = dto.models?.find((name) => !known.has(name));
      if (unknown !== undefined) throw invalidRequest(`models: no model named "${unknown}" is configured`, 'models');
      changes.models = dto.models === null ? null : [...new Set(dto.models)];
    }
    if (dto.expires_at !== undefined) {
      const expiresAt = dto.expires_at === null ? null : new Date(dto.expires_at);
      if (expiresAt !== null && !(expiresAt > now)) {
        throw invalidRequest('expires_at must lie in the future', 'expires_at');
      }
      changes.expiresAt = expiresAt;
    }
    return changes;
  }
}
