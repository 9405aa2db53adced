/**
 * Key administration: create, list, read, change, rotate and revoke keys.
 *
 * Every write is one conditional statement, never a read followed by a save of the whole row:
 * concurrent admin calls and quota reservations cannot overwrite each other. Revocation is
 * one-way (`revoked_at = COALESCE(revoked_at, now)`); changes and rotations only match keys that
 * are not revoked, so a PATCH or rotate racing a DELETE either lands before it or answers 409
 * key_revoked, and never brings the key back.
 */
import { Inject, Injectable } from '@nestjs/common';
import { AppError, invalidRequest } from '../../contracts/app-error';
import { Clock } from '../../contracts/clock';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import { generateApiKey } from '../auth/api-key.crypto';
import type { ApiKeyRow } from '../auth/api-key.row';
import { KeyInvalidation } from '../auth/key-invalidation';
import { Database } from '../../infra/database/database.service';
import { DatabaseRejected } from '../../infra/database/database-errors';
import { UsageWriter } from '../usage/usage-writer';
import { ConcurrencyLeases } from '../../stores/concurrency/concurrency-leases';
import { quotaPeriodAt } from '../limits/quota-period';
import { type DailyUsage, UsageLedgerService } from '../usage/usage-ledger.service';
import { type CreateKeyDto, type KeyLimitsDto, parseTimestamp, type UpdateKeyDto } from './dto/key-fields.dto';
import { currentPeriod, type KeyUsageView, type KeyView, toKeyView } from './dto/key-view';
import { decodeCursor, encodeCursor, parseDayRange, parseLimit, parseSearch } from './admin-query';
import { keySearchCondition } from './key-search';
import { parseBudget } from './budget-field';
import { counterStartAssignments, setsCounters } from './counter-start';
import { teamNotFound, UUID } from './team-errors';
import { costNumber } from '../../contracts/cost';

export type CreatedKeyView = KeyView & { key: string };

/** Column and value of each limit field a request may set. */
type LimitColumns = Partial<
  Record<
    | 'rpm_limit'
    | 'tpm_limit'
    | 'monthly_quota'
    | 'monthly_token_quota'
    | 'models'
    | 'expires_at'
    | 'max_concurrent'
    | 'priority'
    | 'weight'
    | 'monthly_budget'
    | 'team_id',
    unknown
  >
>;

@Injectable()
export class AdminKeysService {
  constructor(
    private readonly db: Database,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly invalidation: KeyInvalidation,
    private readonly usage: UsageLedgerService,
    private readonly usageWriter: UsageWriter,
    private readonly clock: Clock,
    private readonly leases: ConcurrencyLeases,
  ) {}

  async create(dto: CreateKeyDto): Promise<CreatedKeyView> {
    const now = this.clock.now();
    const material = generateApiKey();
    const period = quotaPeriodAt(now);
    const columns: Record<string, unknown> = {
      name: dto.name,
      key_prefix: material.prefix,
      key_hash: material.hash,
      active: true,
      created_at: now,
      updated_at: now,
      quota_period_start: period.start,
      quota_reset_at: period.resetAt,
      ...this.limitColumns(dto, now),
      ...(await this.teamColumn(dto.team_id)),
    };
    const names = Object.keys(columns);
    const { rows } = await this.joiningTeam(() =>
      this.db.query<ApiKeyRow>(
        `INSERT INTO api_keys (${names.join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING *`,
        Object.values(columns),
      ),
    );
    return { ...toKeyView(rows[0], now), key: material.plaintext };
  }

  async list(
    limitParam: unknown,
    cursorParam: unknown,
    searchParam?: unknown,
  ): Promise<{ data: KeyView[]; next_cursor: string | null }> {
    const limit = parseLimit(limitParam);
    const after = decodeCursor(cursorParam);
    const search = parseSearch(searchParam);
    const conditions: string[] = [];
    const params: unknown[] = [];
    if (after) {
      params.push(after.createdAt, after.id);
      conditions.push('(created_at, id) > ($1, $2)');
    }
    if (search !== null) conditions.push(keySearchCondition(search, params));
    params.push(limit + 1);
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const { rows } = await this.db.query<ApiKeyRow>(
      `SELECT * FROM api_keys ${where} ORDER BY created_at, id LIMIT $${params.length}`,
      params,
    );
    const now = this.clock.now();
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      data: page.map((row) => toKeyView(row, now)),
      next_cursor: rows.length > limit && last ? encodeCursor(last.created_at, last.id) : null,
    };
  }

  /**
   * One key with its period's usage and, for a key with max_concurrent, its generations in
   * flight now across replicas (`in_flight`; null for keys without the limit: not counted).
   */
  async get(id: string): Promise<KeyView & { usage: KeyUsageView; in_flight: number | null }> {
    await this.usageWriter.flush(); // this replica's token charges and give-backs first
    const row = await this.find(id);
    const now = this.clock.now();
    const inFlight = row.max_concurrent === null ? null : await this.leases.inFlight(row.id);
    return { ...toKeyView(row, now), usage: await this.periodUsage(row, now), in_flight: inFlight };
  }

  async update(id: string, dto: UpdateKeyDto): Promise<KeyView> {
    const now = this.clock.now();
    const columns: Record<string, unknown> = {
      ...this.limitColumns(dto, now),
      ...(await this.teamColumn(dto.team_id)),
      updated_at: now,
    };
    if (dto.name !== undefined) columns.name = dto.name;
    if (dto.active !== undefined) columns.active = dto.active;
    const params: unknown[] = [id];
    const assignments = Object.entries(columns).map(([column, value]) => {
      params.push(value);
      return `${column} = $${params.length}`;
    });
    if (setsCounters(dto)) assignments.push(...(await this.quotaStartAssignments(id, now, params)));
    const row = await this.joiningTeam(() =>
      this.changeUnrevoked(id, `UPDATE api_keys SET ${assignments.join(', ')}`, params),
    );
    this.invalidation.announce(id);
    return toKeyView(row, now);
  }

  async rotate(id: string): Promise<CreatedKeyView> {
    const now = this.clock.now();
    const material = generateApiKey();
    const row = await this.changeUnrevoked(id, 'UPDATE api_keys SET key_hash = $2, key_prefix = $3, updated_at = $4', [
      id,
      material.hash,
      material.prefix,
      now,
    ]);
    this.invalidation.announce(id);
    return { ...toKeyView(row, now), key: material.plaintext };
  }

  async revoke(id: string): Promise<void> {
    if (!UUID.test(id)) throw keyNotFound();
    const { rows } = await this.db.query<{ id: string }>(
      `UPDATE api_keys SET active = false, revoked_at = COALESCE(revoked_at, $2),
         updated_at = CASE WHEN revoked_at IS NULL THEN $2 ELSE updated_at END
       WHERE id = $1 RETURNING id`,
      [id, this.clock.now()],
    );
    if (rows.length === 0) throw keyNotFound();
    this.invalidation.announce(id);
  }

  async dailyUsage(id: string, fromParam: unknown, toParam: unknown): Promise<{ data: DailyUsage[] }> {
    const { from, to } = parseDayRange(fromParam, toParam, this.clock.now());
    await this.find(id);
    return { data: await this.usage.daily(id, from, to) };
  }

  /**
   * Runs `update … WHERE id = $1 AND revoked_at IS NULL RETURNING *`; when nothing matched,
   * tells a missing key (404) from a revoked one (409).
   */
  private async changeUnrevoked(id: string, update: string, params: unknown[]): Promise<ApiKeyRow> {
    if (!UUID.test(id)) throw keyNotFound();
    const { rows } = await this.db.query<ApiKeyRow>(
      `${update} WHERE id = $1 AND revoked_at IS NULL RETURNING *`,
      params,
    );
    if (rows.length > 0) return rows[0];
    await this.find(id);
    throw new AppError('key_revoked', 'the key is revoked; revoked keys cannot be changed or rotated');
  }

  private async find(id: string): Promise<ApiKeyRow> {
    const rows = UUID.test(id)
      ? (await this.db.query<ApiKeyRow>('SELECT * FROM api_keys WHERE id = $1', [id])).rows
      : [];
    if (rows.length === 0) throw keyNotFound();
    return rows[0];
  }

  /**
   * This period's usage: the quota counters for a key with a quota, else the ledger (keys without
   * one skip the counters); the cost from the ledger.
   */
  private async periodUsage(row: ApiKeyRow, now: Date): Promise<KeyUsageView> {
    const period = currentPeriod(row, now);
    const resetAt = period.resetAt.toISOString();
    const total = await this.usage.totalSince(row.id, quotaPeriodAt(now).start);
    const cost = costNumber(total.cost);
    if (row.monthly_quota !== null || row.monthly_token_quota !== null) {
      return { requests: period.requests, tokens: period.tokens, cost, quota_reset_at: resetAt };
    }
    return { requests: total.requests, tokens: total.tokens, cost, quota_reset_at: resetAt };
  }

  /** `team_id` of a create or change: an existing team (404 team_not_found), or null to leave one. */
  private async teamColumn(teamId: string | null | undefined): Promise<{ team_id?: string | null }> {
    if (teamId === undefined) return {};
    if (teamId === null) return { team_id: null };
    const { rows } = UUID.test(teamId)
      ? await this.db.query<{ id: string }>('SELECT id FROM teams WHERE id = $1', [teamId])
      : { rows: [] };
    if (rows.length === 0) throw teamNotFound('team_id');
    return { team_id: rows[0].id };
  }

  /** A team deleted between the check and the write fails the foreign key: 404 team_not_found. */
  private async joiningTeam<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (error instanceof DatabaseRejected && (error.cause as { code?: string })?.code === '23503') {
        throw teamNotFound('team_id');
      }
      throw error;
    }
  }

  /** The counters start from the ledger when the key gets its first quota or budget (counter-start.ts). */
  private async quotaStartAssignments(id: string, now: Date, params: unknown[]): Promise<string[]> {
    const period = quotaPeriodAt(now);
    return counterStartAssignments(params, period, await this.usage.totalSince(id, period.start));
  }

  /** The limit columns present in the request, checked against config and the clock. */
  private limitColumns(dto: KeyLimitsDto, now: Date): LimitColumns {
    const columns: LimitColumns = {};
    if (dto.rpm_limit !== undefined) columns.rpm_limit = dto.rpm_limit;
    if (dto.tpm_limit !== undefined) columns.tpm_limit = dto.tpm_limit;
    if (dto.monthly_quota !== undefined) columns.monthly_quota = dto.monthly_quota;
    if (dto.monthly_token_quota !== undefined) columns.monthly_token_quota = dto.monthly_token_quota;
    if (dto.max_concurrent !== undefined) columns.max_concurrent = dto.max_concurrent;
    if (dto.priority !== undefined) columns.priority = dto.priority;
    if (dto.weight !== undefined) columns.weight = dto.weight;
    if (dto.monthly_budget !== undefined) columns.monthly_budget = parseBudget(dto.monthly_budget);
    if (dto.models !== undefined) {
      const known = new Set(this.config.models.models.map((model) => model.name));
      const unknown = dto.models?.find((name) => !known.has(name));
      if (unknown !== undefined) throw invalidRequest(`models: no model named "${unknown}" is configured`, 'models');
      columns.models = dto.models === null ? null : [...new Set(dto.models)];
    }
    if (dto.expires_at !== undefined) {
      const expiresAt = dto.expires_at === null ? null : parseTimestamp(dto.expires_at, 'expires_at');
      if (expiresAt !== null && !(expiresAt > now)) {
        throw invalidRequest('expires_at must lie in the future', 'expires_at');
      }
      columns.expires_at = expiresAt;
    }
    return columns;
  }
}

function keyNotFound(): AppError {
  return new AppError('key_not_found', 'no API key with this id');
}
