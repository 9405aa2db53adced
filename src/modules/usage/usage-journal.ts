/**
 * What the usage journal holds (infra/journal/journal-file.ts) and how its lines become pending
 * work again after a restart. The journal is written before anything is acknowledged in memory:
 * - `e`: one request's usage (seq-numbered), before it joins the in-memory sums (with the
 *   reservation whose budget it settles);
 * - `b`: a batch formed from the sums of the events up to `upTo`, with its id, before it is
 *   written (every write of it, retries after an ambiguous failure included, carries that id);
 * - `d`: the batch is written (or superseded: split after a rejection, quarantined);
 * - `o`: a quota reservation about to be made, with its id: concluded by the request's event
 *   (`e` with that `rid`) or by a release (`r`); one left open was cut by a crash;
 * - `r`: a reservation to give back, with its id: its quota unit and its budget (a request that
 *   ends free, or a reservation whose outcome the server could not learn); `x`: given back (its
 *   releaseId()).
 * Replayed, the journal yields the batches not done (retried as they are: same id, same rows),
 * the events after the last batch (summed into new batches), the releases not done and the
 * reservations left open (their requests died with the process: given back like a failure
 * before any output).
 */

/** One request's usage, as the ledger and the token quota count it. */
export interface UsageEvent {
  keyId: string;
  /** The UTC day of the ledger row (YYYY-MM-DD). */
  day: string;
  model: string;
  cached: boolean;
  promptTokens: number;
  completionTokens: number;
  /** The quota period (its end, ISO 8601) the tokens are charged in; null: the key has no quota. */
  quotaResetAt: string | null;
  /** The key's team when the request ran (its ledger row and token quota are charged too). */
  teamId?: string | null;
  /** The team's quota period the tokens are charged in; null: the team has no quota. */
  teamQuotaResetAt?: string | null;
  /** The request's cost in femto-units (contracts/cost.ts), as integer text (JSON has no bigint). */
  cost?: string;
  /**
   * The reservation whose budget rows this usage settles (its id): written with the batch, which
   * deletes the rows and takes their amounts off the owners' budget_reserved as it adds the cost.
   */
  settles?: string;
}

/** Sums of (key, UTC day, model) for key_usage_daily, and of the key's team then (team_usage_daily). */
export interface LedgerRow {
  keyId: string;
  teamId?: string | null;
  day: string;
  model: string;
  requests: number;
  cachedRequests: number;
  promptTokens: number;
  completionTokens: number;
  /** Femto-units, integer text. */
  cost?: string;
}

/** Tokens and spend charged to a key's quota period (or its team's, `team`). */
export interface TokenCharge {
  /** The key's id, or the team's. */
  keyId: string;
  team?: true;
  /** Spend in femto-units (integer text), added to the owner's budget_spent. */
  cost?: string;
  resetAt: string;
  tokens: number;
}

/** What one exactly-once write applies. */
export interface UsageBatch {
  id: string;
  rows: LedgerRow[];
  charges: TokenCharge[];
  /** Reservations whose budget rows are settled (UsageEvent.settles). */
  settles?: string[];
}

/**
 * A reservation to give back, once, if it happened (limits/limit-owner.ts names its markers):
 * its quota unit and its budget reservation, if any.
 */
export interface PendingRelease {
  /** The reservation's id (its marker is `reserve:<rid>`, or `reserve:team:<rid>`). */
  rid: string;
  /** The key's id, or the team's (`team`). */
  keyId: string;
  team?: true;
  resetAt: string;
  /** Not before this time (epoch ms): a reservation still running must have ended first. */
  after: number;
}

/** A quota reservation (its marker is `reserve:<rid>`, or `reserve:team:<rid>`). */
export interface OpenReservation {
  rid: string;
  keyId: string;
  team?: true;
  resetAt: string;
}

/** The id a reservation's settlement goes by in the journal and the writer (a key's and its team's share the rid). */
export function releaseId(reservation: { rid: string; team?: true }): string {
  return reservation.team ? `team:${reservation.rid}` : reservation.rid;
}

export type JournalLine =
  | { t: 'o'; reservation: OpenReservation }
  | { t: 'e'; s: number; e: UsageEvent; rid?: string }
  | { t: 'b'; upTo: number | null; batch: UsageBatch }
  | { t: 'd'; id: string }
  | { t: 'r'; release: PendingRelease }
  | { t: 'x'; rid: string };

export interface PendingUsage {
  batches: UsageBatch[];
  /** Events no batch holds yet, in order. */
  events: { seq: number; event: UsageEvent }[];
  releases: PendingRelease[];
  /** Reservations neither charged nor given back. */
  open: OpenReservation[];
}

/** The work a journal's lines leave pending. */
export function replay(lines: unknown[]): PendingUsage {
  const batches = new Map<string, UsageBatch>();
  const events: { seq: number; event: UsageEvent }[] = [];
  const releases = new Map<string, PendingRelease>();
  const open = new Map<string, OpenReservation>();
  let batchedUpTo = 0;
  for (const raw of lines) {
    const line = raw as JournalLine;
    switch (line?.t) {
      case 'o':
        open.set(releaseId(line.reservation), line.reservation);
        break;
      case 'e':
        events.push({ seq: line.s, event: line.e });
        if (line.rid !== undefined) concludeOpen(open, line.rid);
        break;
      case 'b':
        batches.set(line.batch.id, line.batch);
        if (line.upTo !== null) batchedUpTo = Math.max(batchedUpTo, line.upTo);
        break;
      case 'd':
        batches.delete(line.id);
        break;
      case 'r':
        releases.set(releaseId(line.release), line.release);
        open.delete(releaseId(line.release));
        break;
      case 'x':
        releases.delete(line.rid);
        break;
      default:
      // a line this version does not know: ignored
    }
  }
  return {
    batches: [...batches.values()],
    events: events.filter(({ seq }) => seq > batchedUpTo),
    releases: [...releases.values()],
    open: [...open.values()],
  };
}

/** A request's event concludes its key's and its team's open reservations (both go by its rid). */
export function concludeOpen(open: Map<string, OpenReservation>, rid: string): void {
  open.delete(rid);
  open.delete(`team:${rid}`);
}

/** The ledger rows and token charges of `events`, summed per (key, day, model) and (key, period). */
export function sumEvents(events: Iterable<UsageEvent>): {
  rows: LedgerRow[];
  charges: TokenCharge[];
  settles: string[];
} {
  const rows = new Map<string, LedgerRow>();
  const charges = new Map<string, TokenCharge>();
  const settles = new Set<string>();
  for (const event of events) addEvent(rows, charges, event, settles);
  return { rows: [...rows.values()], charges: [...charges.values()], settles: [...settles] };
}

/** Adds one event to running sums (the writer's pending state, or a replay's). */
export function addEvent(
  rows: Map<string, LedgerRow>,
  charges: Map<string, TokenCharge>,
  event: UsageEvent,
  settles: Set<string> = new Set(),
): void {
  if (event.settles !== undefined) settles.add(event.settles);
  const teamId = event.teamId ?? null;
  const rowId = `${event.keyId}\u0000${teamId ?? ''}\u0000${event.day}\u0000${event.model}`;
  const row = rows.get(rowId);
  const cost = event.cost ?? '0';
  if (row) {
    row.requests += 1;
    row.cachedRequests += event.cached ? 1 : 0;
    row.promptTokens += event.promptTokens;
    row.completionTokens += event.completionTokens;
    row.cost = (BigInt(row.cost ?? '0') + BigInt(cost)).toString();
  } else {
    rows.set(rowId, {
      keyId: event.keyId,
      teamId,
      day: event.day,
      model: event.model,
      requests: 1,
      cachedRequests: event.cached ? 1 : 0,
      promptTokens: event.promptTokens,
      completionTokens: event.completionTokens,
      cost,
    });
  }
  const tokens = event.promptTokens + event.completionTokens;
  if (tokens === 0 && cost === '0') return;
  if (event.quotaResetAt !== null)
    addCharge(charges, { keyId: event.keyId, resetAt: event.quotaResetAt, tokens, cost });
  if (teamId !== null && event.teamQuotaResetAt) {
    addCharge(charges, { keyId: teamId, team: true, resetAt: event.teamQuotaResetAt, tokens, cost });
  }
}

function addCharge(charges: Map<string, TokenCharge>, add: TokenCharge): void {
  const chargeId = `${add.team ? 'team' : 'key'}\u0000${add.keyId}\u0000${add.resetAt}`;
  const charge = charges.get(chargeId);
  if (!charge) {
    charges.set(chargeId, add);
    return;
  }
  charge.tokens += add.tokens;
  charge.cost = (BigInt(charge.cost ?? '0') + BigInt(add.cost ?? '0')).toString();
}

/** Ledger rows per batch (7 statement parameters each, far below PostgreSQL's 65535). */
export const ROWS_PER_BATCH = 500;

/**
 * `rows` and `charges` as batches of at most ROWS_PER_BATCH rows; ids `<id>`, `<id>.1`, ... (the
 * charges and settlements go with the first: a settlement frees its reservation as its cost is
 * charged, in one statement).
 */
export function batchesOf(id: string, rows: LedgerRow[], charges: TokenCharge[], settles: string[] = []): UsageBatch[] {
  const batches: UsageBatch[] = [];
  for (let at = 0, part = 0; at < Math.max(rows.length, 1); at += ROWS_PER_BATCH, part += 1) {
    batches.push({
      id: `${id}${part > 0 ? `.${part}` : ''}`,
      rows: rows.slice(at, at + ROWS_PER_BATCH),
      charges: part === 0 ? charges : [],
      ...(part === 0 && settles.length > 0 ? { settles } : {}),
    });
  }
  return batches;
}

/** A batch the database rejected split in two (rows first, then each charge alone); none left: one bad row. */
export function halvesOf(batch: UsageBatch): UsageBatch[] {
  if (batch.rows.length + batch.charges.length <= 1) return [];
  const settles = batch.settles ? { settles: batch.settles } : {};
  if (batch.rows.length > 1) {
    const half = Math.ceil(batch.rows.length / 2);
    return [
      { id: `${batch.id}/a`, rows: batch.rows.slice(0, half), charges: batch.charges, ...settles },
      { id: `${batch.id}/b`, rows: batch.rows.slice(half), charges: [] },
    ];
  }
  return [
    { id: `${batch.id}/a`, rows: batch.rows, charges: [], ...settles },
    ...batch.charges.map((charge, i) => ({ id: `${batch.id}/c${i}`, rows: [], charges: [charge] })),
  ];
}

/** A compacted journal: just the pending work (batches formed up to `seq`, releases, open reservations). */
export function pendingLines(
  seq: number,
  batches: readonly UsageBatch[],
  releases: Iterable<PendingRelease>,
  open: Iterable<OpenReservation>,
): JournalLine[] {
  return [
    ...batches.map((batch): JournalLine => ({ t: 'b', upTo: seq, batch })),
    ...[...releases].map((release): JournalLine => ({ t: 'r', release })),
    ...[...open].map((reservation): JournalLine => ({ t: 'o', reservation })),
  ];
}

/**
 * The work a journal of a process that is gone (named `origin`) leaves: its batches as they are,
 * its events as batches whose ids come from that journal (taking it over again after a crash
 * midway makes the same ids, so nothing is written twice), its releases, and a release for each
 * reservation it left open, not before `openAfter` (epoch ms: a reservation statement the dead
 * process had sent may still be running in the database).
 */
export function adoptedWork(
  origin: string,
  lines: unknown[],
  openAfter: number,
): { batches: UsageBatch[]; releases: PendingRelease[] } {
  const pending = replay(lines);
  const batches = [...pending.batches];
  if (pending.events.length > 0) {
    const { rows, charges, settles } = sumEvents(pending.events.map(({ event }) => event));
    const first = pending.events[0].seq;
    const last = pending.events[pending.events.length - 1].seq;
    batches.push(...batchesOf(`${origin}:${first}-${last}`, rows, charges, settles));
  }
  const cut = pending.open.map((reservation) => ({ ...reservation, after: openAfter }));
  return { batches, releases: [...pending.releases, ...cut] };
}
