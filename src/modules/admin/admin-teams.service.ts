/**
 * Team administration (API.md "Teams, prices and budgets"): create, list, read, change and delete
 * teams, and their usage. Like keys, every write is one conditional statement; a team's limits
 * reach its keys' cached settings through KeyInvalidation (each of its keys is announced), so a
 * change holds on every replica within the keys' 5 s bound.
 */
import { Injectable } from '@nestjs/common';
import { AppError } from '../../contracts/app-error';
import { Clock } from '../../contracts/clock';
import { costNumber } from '../../contracts/cost';
import { Database } from '../../infra/database/database.service';
import { KeyInvalidation } from '../auth/key-invalidation';
import { quotaPeriodAt } from '../limits/quota-period';
import { type DailyUsage, UsageLedgerService } from '../usage/usage-ledger.service';
import { UsageWriter } from '../usage/usage-writer';
import { decodeCursor, encodeCursor, parseDayRange, parseLimit } from './admin-query';
import { parseBudget } from './budget-field';
import { counterStartAssignments, setsCounters } from './counter-start';
import type { CreateTeamDto, TeamLimitsDto, UpdateTeamDto } from './dto/team-fields.dto';
import { type TeamRow, type TeamView, toTeamView } from './dto/team-view';
import { teamNotFound, UUID } from './team-errors';

export interface TeamUsageView {
  requests: number;
  tokens: number;
  /** Spend this period, in CURRENCY (the ledger's; the budget's settled spend when one is set). */
  cost: number;
  /** The largest cost of the team's requests in flight, held against its budget. */
  reserved: number;
  quota_reset_at: string;
}

const LIMIT_FIELDS = ['rpm_limit', 'tpm_limit', 'monthly_quota', 'monthly_token_quota', 'max_concurrent'] as const;

/** Deletes a team with no unrevoked key; revoked keys (which cannot change any more) leave it in the same statement. */
const DELETE_SQL = `
WITH busy AS (SELECT 1 FROM api_keys WHERE team_id = $1 AND revoked_at IS NULL LIMIT 1),
detached AS (UPDATE api_keys SET team_id = NULL WHERE team_id = $1 AND NOT EXISTS (SELECT 1 FROM busy) RETURNING 1)
DELETE FROM teams WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM busy) RETURNING id`;

@Injectable()
export class AdminTeamsService {
  constructor(
    private readonly db: Database,
    private readonly invalidation: KeyInvalidation,
    private readonly usage: UsageLedgerService,
    private readonly usageWriter: UsageWriter,
    private readonly clock: Clock,
  ) {}

  async create(dto: CreateTeamDto): Promise<TeamView> {
    const now = this.clock.now();
    const period = quotaPeriodAt(now);
    const columns: Record<string, unknown> = {
      name: dto.name,
      created_at: now,
      updated_at: now,
      quota_period_start: period.start,
      quota_reset_at: period.resetAt,
      ...limitColumns(dto),
    };
    const names = Object.keys(columns);
    const { rows } = await this.db.query<TeamRow>(
      `INSERT INTO teams (${names.join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING *`,
      Object.values(columns),
    );
    return toTeamView(rows[0]);
  }

  async list(limitParam: unknown, cursorParam: unknown): Promise<{ data: TeamView[]; next_cursor: string | null }> {
    const limit = parseLimit(limitParam);
    const after = decodeCursor(cursorParam);
    const params: unknown[] = after ? [after.createdAt, after.id] : [];
    params.push(limit + 1);
    const where = after ? 'WHERE (created_at, id) > ($1, $2)' : '';
    const { rows } = await this.db.query<TeamRow>(
      `SELECT * FROM teams ${where} ORDER BY created_at, id LIMIT $${params.length}`,
      params,
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      data: page.map(toTeamView),
      next_cursor: rows.length > limit && last ? encodeCursor(last.created_at, last.id) : null,
    };
  }

  /** One team with its period's usage and how many keys belong to it. */
  async get(id: string): Promise<TeamView & { usage: TeamUsageView; key_count: number }> {
    await this.usageWriter.flush(); // this replica's charges and settlements first
    const row = await this.find(id);
    const now = this.clock.now();
    const { rows } = await this.db.query<{ count: number }>(
      'SELECT count(*)::int AS count FROM api_keys WHERE team_id = $1 AND revoked_at IS NULL',
      [id],
    );
    return { ...toTeamView(row), usage: await this.periodUsage(row, now), key_count: rows[0].count };
  }

  async update(id: string, dto: UpdateTeamDto): Promise<TeamView> {
    const now = this.clock.now();
    const columns: Record<string, unknown> = { ...limitColumns(dto), updated_at: now };
    if (dto.name !== undefined) columns.name = dto.name;
    const params: unknown[] = [id];
    const assignments = Object.entries(columns).map(([column, value]) => {
      params.push(value);
      return `${column} = $${params.length}`;
    });
    if (!UUID.test(id)) throw teamNotFound();
    if (setsCounters(dto)) {
      const period = quotaPeriodAt(now);
      assignments.push(
        ...counterStartAssignments(params, period, await this.usage.totalSince(id, period.start, 'team')),
      );
    }
    const { rows } = await this.db.query<TeamRow>(
      `UPDATE teams SET ${assignments.join(', ')} WHERE id = $1 RETURNING *`,
      params,
    );
    if (rows.length === 0) throw teamNotFound();
    await this.announceKeys(id);
    return toTeamView(rows[0]);
  }

  /** 409 team_not_empty while unrevoked keys belong to it; else 204. */
  async remove(id: string): Promise<void> {
    if (!UUID.test(id)) throw teamNotFound();
    const { rows } = await this.db.query<{ id: string }>(DELETE_SQL, [id]);
    if (rows.length > 0) return;
    await this.find(id);
    throw new AppError('team_not_empty', 'keys still belong to this team; move them to another team (team_id) first');
  }

  async dailyUsage(id: string, fromParam: unknown, toParam: unknown): Promise<{ data: DailyUsage[] }> {
    const { from, to } = parseDayRange(fromParam, toParam, this.clock.now());
    await this.find(id);
    return { data: await this.usage.daily(id, from, to, 'team') };
  }

  private async find(id: string): Promise<TeamRow> {
    const rows = UUID.test(id) ? (await this.db.query<TeamRow>('SELECT * FROM teams WHERE id = $1', [id])).rows : [];
    if (rows.length === 0) throw teamNotFound();
    return rows[0];
  }

  /** Each of the team's keys: its cached settings (the team's limits with them) are dropped on every replica. */
  private async announceKeys(teamId: string): Promise<void> {
    const { rows } = await this.db.query<{ id: string }>('SELECT id FROM api_keys WHERE team_id = $1', [teamId]);
    for (const { id } of rows) this.invalidation.announce(id);
  }

  /** The quota counters when the team has a quota, else its ledger; the cost from the ledger. */
  private async periodUsage(row: TeamRow, now: Date): Promise<TeamUsageView> {
    const period = quotaPeriodAt(now);
    const total = await this.usage.totalSince(row.id, period.start, 'team');
    const current = row.quota_reset_at > now;
    const counted = row.monthly_quota !== null || row.monthly_token_quota !== null;
    return {
      requests: counted ? (current ? row.quota_requests_used : 0) : total.requests,
      tokens: counted ? (current ? Number(row.quota_tokens_used) : 0) : total.tokens,
      cost: costNumber(total.cost),
      reserved: costNumber(row.budget_reserved),
      quota_reset_at: (current ? row.quota_reset_at : period.resetAt).toISOString(),
    };
  }
}

function limitColumns(dto: TeamLimitsDto): Record<string, unknown> {
  const columns: Record<string, unknown> = {};
  for (const field of LIMIT_FIELDS) if (dto[field] !== undefined) columns[field] = dto[field];
  if (dto.monthly_budget !== undefined) columns.monthly_budget = parseBudget(dto.monthly_budget);
  return columns;
}
