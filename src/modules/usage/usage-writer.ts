/**
 * Writes what requests used — the usage ledger (key_usage_daily), the token-quota charges and
 * the quota units given back — exactly once, without losing any of it to a database outage, a
 * restart or a crash (API.md "Quotas").
 *
 * - Journaled first: a request's usage is appended to this process's journal
 *   (usage-journal.ts) before it joins the in-memory sums, so a crash loses nothing the server
 *   acknowledged; journals of processes that are gone are taken over at start.
 * - Batched: the sums go out in batches, every FLUSH_INTERVAL_MS (every CHARGE_FLUSH_MS while a
 *   token charge waits, so other replicas see the token quota used), before the ledger is read,
 *   and at shutdown. A batch has an id and is written by one statement that records it
 *   (usage-writes.sql.ts): retried after any failure with the same id and rows, it is applied
 *   once. A batch the database rejects because of one bad row (a rejection rolls the statement
 *   back: nothing was applied) is split until the bad row is alone; that row is quarantined
 *   (logged with its figures) and every other row is written.
 * - Gives back units once: a release is journaled, tried at once, retried until done, and applies
 *   only if the reservation happened (one whose reply was lost is settled once it cannot be
 *   running). Reservations are journaled before they are made (`reserving`); one a crash left
 *   open is given back by the process that takes the journal over (its request died unanswered:
 *   free, like a failure before any output).
 * - At shutdown the last flush goes around the database's down-gate (it was maybe marked down by
 *   a blip that is over) and is retried until the shutdown's grace ends (at least
 *   FINAL_FLUSH_MIN_MS); what still cannot be written stays in the journal for the next start.
 * One cohesive thing: every write above shares the journal, its compaction and the one retry
 * loop, and their order matters (an event before its batch, a batch before it is tried); split,
 * the pieces would have to share all of that state.
 */
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { join } from 'node:path';
import { DatabaseRejected, isBadInput } from '../../infra/database/database-errors';
import { Database } from '../../infra/database/database.service';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import { JournalFile } from '../../infra/journal/journal-file';
import { ShutdownState } from '../../infra/lifecycle/shutdown-state';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';
import { releaseMarker, reserveMarker } from '../limits/limit-owner';
import {
  addEvent,
  adoptedWork,
  batchesOf,
  concludeOpen,
  halvesOf,
  pendingLines,
  releaseId,
  type JournalLine,
  type LedgerRow,
  type OpenReservation,
  type PendingRelease,
  type TokenCharge,
  type UsageBatch,
  type UsageEvent,
} from './usage-journal';
import { batchStatement, RELEASE_SQL, SWEEP_SQL } from './usage-writes.sql';

/** How often pending sums are written, in ms (a provider, so tests can turn the timer off with 0). */
export const LEDGER_FLUSH_INTERVAL_MS = Symbol('LEDGER_FLUSH_INTERVAL_MS');
export const DEFAULT_FLUSH_INTERVAL_MS = 1000;
const CHARGE_FLUSH_MS = 100; // a token charge waits at most this long: other replicas see the quota used
/** The final flush retries at this pace, for at least this long. */
const FINAL_FLUSH_RETRY_MS = 200;
const FINAL_FLUSH_MIN_MS = 5000;
const SWEEP_INTERVAL_MS = 10 * 60_000; // old write ids are swept this often
/** The journal is compacted past this many lines even while work is pending (an outage). */
const COMPACT_LINES = 20_000;

/** A database that is down, or a statement that did not answer: the write may or may not have happened. */
class WriteUnknown extends Error {}

@Injectable()
export class UsageWriter implements OnModuleInit, OnApplicationShutdown {
  private readonly journal: JournalFile;
  /** This process's name (its journal's): the holder of its budget reservations. */
  readonly instance: string;
  private seq = 0;
  /** Events not in a batch yet: their sums. */
  private rows = new Map<string, LedgerRow>();
  private charges = new Map<string, TokenCharge>();
  private settles = new Set<string>();
  private firstPendingSeq = 0;
  /** Batches formed and not written yet, in order. */
  private batches: UsageBatch[] = [];
  private readonly releases = new Map<string, PendingRelease>();
  /** Reservations journaled as open and not concluded yet (kept by compaction). */
  private readonly open = new Map<string, OpenReservation>();
  private appendedLines = 0;
  private timer: NodeJS.Timeout | null = null;
  private soon: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  /** Flushes run one after another. */
  private tail: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly db: Database,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'dataDir' | 'shutdownGraceMs' | 'dbTimeoutMs'>,
    private readonly shutdown: ShutdownState,
    @Inject(LEDGER_FLUSH_INTERVAL_MS) private readonly intervalMs: number = DEFAULT_FLUSH_INTERVAL_MS,
  ) {
    const { journal, adopted } = JournalFile.open(join(config.dataDir, 'usage-journal'), 'usage');
    this.journal = journal;
    this.instance = journal.file.replace(/^.*\//, '').replace(/\.jsonl$/, '');
    for (const { file, lines } of adopted) this.adopt(file, lines);
  }

  onModuleInit(): void {
    if (this.batches.length > 0 || this.releases.size > 0) void this.flush();
    if (this.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
    this.sweepTimer = setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  /** After the HTTP server has closed, before the database closes (UsageModule is not global). */
  async onApplicationShutdown(): Promise<void> {
    for (const timer of [this.timer, this.soon, this.sweepTimer]) if (timer) clearTimeout(timer);
    this.timer = this.soon = this.sweepTimer = null;
    const graceEnds = (this.shutdown.beganAt?.getTime() ?? Date.now()) + this.config.shutdownGraceMs;
    await this.flushUntil(Math.max(graceEnds, Date.now() + FINAL_FLUSH_MIN_MS), true);
    this.closed = true;
    const left = this.batches.length + this.releases.size;
    if (left > 0) {
      this.logger.error(
        { batches: this.batches.length, releases: this.releases.size, journal: this.journal.file },
        'usage: the final flush could not write everything; it is kept in the journal and written at the next start',
      );
    }
    this.journal.close();
  }

  /** Work not written yet: sums of events, batches, releases. */
  get pending(): { rows: number; batches: number; releases: number } {
    return { rows: this.rows.size, batches: this.batches.length, releases: this.releases.size };
  }

  /** Tokens charged to a key (or its team, `team`) in the period ending `resetAt` that are not written yet. */
  unwrittenTokens(ownerId: string, resetAt: string, team = false): number {
    let tokens = 0;
    const count = (charge: TokenCharge) => {
      if (charge.keyId === ownerId && charge.resetAt === resetAt && Boolean(charge.team) === team)
        tokens += charge.tokens;
    };
    for (const charge of this.charges.values()) count(charge);
    for (const batch of this.batches) batch.charges.forEach(count);
    return tokens;
  }

  /** A reservation is about to be made: journaled open, so a crash before its request ends gives it back. */
  reserving(reservation: OpenReservation): void {
    this.open.set(releaseId(reservation), reservation);
    this.append({ t: 'o', reservation });
  }

  /** The reservation was not made (refused, or never sent): nothing to give back. */
  notReserved(reservation: { rid: string; team?: true }): void {
    this.open.delete(releaseId(reservation));
  }

  /** One request's usage (`rid`: the reservation it concludes). Journaled before it counts; no other I/O. */
  record(event: UsageEvent, rid?: string): void {
    this.seq += 1;
    if (rid !== undefined) concludeOpen(this.open, rid);
    this.append(rid === undefined ? { t: 'e', s: this.seq, e: event } : { t: 'e', s: this.seq, e: event, rid });
    if (this.rows.size === 0 && this.charges.size === 0) this.firstPendingSeq = this.seq;
    addEvent(this.rows, this.charges, event, this.settles);
    // Charges and settlements go out soon: other replicas see the quota used, the budget freed.
    const counted = event.quotaResetAt !== null || Boolean(event.teamQuotaResetAt) || event.settles !== undefined;
    if (counted && !this.soon && this.intervalMs > 0) {
      this.soon = setTimeout(() => {
        this.soon = null;
        void this.flush();
      }, CHARGE_FLUSH_MS).unref();
    }
  }

  /**
   * Gives a reservation back, once, if it happened: its unit and its budget. `after`: not before
   * then (a reservation whose reply was lost may still be running). Resolves true when it is done
   * now; otherwise it is retried until it is.
   */
  async release(release: PendingRelease): Promise<boolean> {
    this.open.delete(releaseId(release));
    this.releases.set(releaseId(release), release);
    this.append({ t: 'r', release });
    if (release.after > Date.now()) return false;
    return this.writeRelease(release, false);
  }

  /** Writes everything pending. Never rejects: what fails is kept and retried. */
  flush(): Promise<void> {
    const run = this.tail.then(() => this.writePending(false));
    this.tail = run;
    return run;
  }

  /** Flushes until nothing is pending or `deadline` (epoch ms) has passed. */
  async flushUntil(deadline: number, bypassGate: boolean): Promise<void> {
    const run = this.tail.then(async () => {
      await this.writePending(bypassGate);
      while (this.batches.length + this.releases.size > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, FINAL_FLUSH_RETRY_MS));
        await this.writePending(bypassGate);
      }
    });
    this.tail = run;
    return run;
  }

  private async writePending(bypassGate: boolean): Promise<void> {
    if (this.closed) return;
    this.formBatches();
    while (this.batches.length > 0) {
      const batch = this.batches[0];
      try {
        await this.execute(batchStatement(batch), bypassGate);
      } catch (error) {
        if (!(error instanceof DatabaseRejected)) break; // unknown outcome: retried as it is
        this.splitRejected(batch);
        continue;
      }
      this.batches.shift();
      this.append({ t: 'd', id: batch.id });
    }
    const now = Date.now();
    for (const release of [...this.releases.values()]) {
      if (release.after > now) continue;
      // The first that gets no answer ends the round (they may all wait on one locked row).
      if (!(await this.writeRelease(release, bypassGate))) break;
    }
    this.compact();
  }

  /** Turns the pending sums into batches (journaled with their ids before any attempt). */
  private formBatches(): void {
    if (this.rows.size === 0 && this.charges.size === 0) return;
    const rows = [...this.rows.values()];
    const charges = [...this.charges.values()];
    const settles = [...this.settles];
    this.rows = new Map();
    this.charges = new Map();
    this.settles = new Set();
    const upTo = this.seq;
    for (const batch of batchesOf(`${this.instance}:${this.firstPendingSeq}-${upTo}`, rows, charges, settles)) {
      this.append({ t: 'b', upTo, batch });
      this.batches.push(batch);
    }
  }

  /** A rejected batch applied nothing: its halves are new batches; a single bad row is quarantined. */
  private splitRejected(batch: UsageBatch): void {
    this.batches.shift();
    const parts = halvesOf(batch);
    if (parts.length === 0)
      this.logger.error({ batch }, 'usage: the database rejected this row; quarantined (dropped)');
    for (const part of parts) this.append({ t: 'b', upTo: null, batch: part });
    this.append({ t: 'd', id: batch.id });
    this.batches.unshift(...parts);
  }

  /** True when the release is settled (written, or rejected and dropped); false: retried later. */
  private async writeRelease(release: PendingRelease, bypassGate: boolean): Promise<boolean> {
    try {
      const owner = release.team ? 'team' : 'key';
      const values = [
        release.keyId,
        release.resetAt,
        release.rid,
        releaseMarker(owner, release.rid),
        reserveMarker(owner, release.rid),
      ];
      await this.execute({ text: RELEASE_SQL[release.team ? 'teams' : 'api_keys'], values }, bypassGate);
    } catch (error) {
      if (!(error instanceof DatabaseRejected)) return false;
      this.logger.error({ release }, 'usage: the database rejected a reservation give-back; dropped');
    }
    if (this.releases.delete(releaseId(release))) this.append({ t: 'x', rid: releaseId(release) });
    return true;
  }

  /** One statement: through the down-gate, or (the final flush) straight to the pool. */
  private async execute(statement: { text: string; values: unknown[] }, bypassGate: boolean): Promise<void> {
    try {
      if (bypassGate) await this.db.run(statement.text, statement.values);
      else await this.db.query(statement.text, statement.values, { background: true });
    } catch (error) {
      if (error instanceof DatabaseRejected || isBadInput(error)) throw new DatabaseRejected({ cause: error });
      throw new WriteUnknown('the write may or may not have happened', { cause: error });
    }
  }

  private async sweep(): Promise<void> {
    await this.db.query(SWEEP_SQL).catch(() => undefined);
  }

  private append(line: JournalLine): void {
    if (this.closed) return;
    this.journal.append(line);
    this.appendedLines += 1;
  }

  /** Keeps the journal small: empty when nothing is pending, else only what is. */
  private compact(): void {
    if (this.closed || this.appendedLines === 0) return;
    const idle = this.batches.length === 0 && this.releases.size === 0 && this.rows.size === 0 && this.open.size === 0;
    if (idle) {
      this.journal.rewrite([]);
      this.appendedLines = 0;
      return;
    }
    this.journal.touch();
    if (this.appendedLines < COMPACT_LINES) return;
    // Events recorded while this flush wrote are only in their `e` lines: batch them first.
    this.formBatches();
    this.journal.rewrite(pendingLines(this.seq, this.batches, this.releases.values(), this.open.values()));
    this.appendedLines = 0;
  }

  /**
   * Takes over the work a process that is gone left in its journal (usage-journal.ts,
   * adoptedWork()): journaled here first, then the old file is removed.
   */
  private adopt(file: string, lines: unknown[]): void {
    const origin = file.replace(/^.*\//, '').replace(/\.jsonl$/, '');
    // A reservation the dead process had sent may still be running: given back once it cannot be.
    const openAfter = Date.now() + this.config.dbTimeoutMs + 1000;
    const { batches, releases } = adoptedWork(origin, lines, openAfter);
    for (const batch of batches) this.append({ t: 'b', upTo: null, batch });
    for (const release of releases) this.append({ t: 'r', release });
    this.batches.push(...batches);
    for (const release of releases) this.releases.set(releaseId(release), release);
    this.journal.remove(file);
    if (batches.length + releases.length > 0) {
      this.logger.info(
        { from: origin, batches: batches.length, releases: releases.length },
        'usage: took over unwritten usage from a previous process; writing it now',
      );
    }
  }
}
