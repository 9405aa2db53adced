/**
 * A node-postgres-shaped Pool over one embedded PGlite instance, given to TypeORM's postgres
 * driver as its `driver`. Why not typeorm-pglite: it keeps one PGlite per process in a static
 * singleton (two data sources in one process share and close each other's database) and hands
 * every caller the same session at once, so concurrent transactions interleave. Here each
 * data source owns its instance, and a connection is an exclusive lease on the single session:
 * a transaction holds the lease until it releases it, and other queries wait their turn.
 */
import { EventEmitter } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import type { PGlite, PGliteOptions, Results } from '@electric-sql/pglite';
import { seedFromTemplate } from './pglite-template';

/** PostgreSQL's type OID of boolean (PGlite's `types.BOOL`, without loading PGlite to read it). */
const BOOL_OID = 16;

/**
 * Settings sized for one gateway's bookkeeping rather than PostgreSQL's server defaults (128 MB
 * of shared buffers, a WAL allowed to grow to 1 GB): the embedded database's memory is the
 * WebAssembly heap, which never shrinks, so these bound the server's RSS (README "Footprint").
 * Applied on top of PGlite's own start parameters, which they must not replace.
 */
export const PGLITE_SETTINGS = ['shared_buffers=16MB', 'min_wal_size=32MB', 'max_wal_size=32MB', 'wal_buffers=1MB'];

type Callback<T> = (error: Error | null, value?: T) => void;

interface PgResult {
  rows: unknown[];
  rowCount: number;
  command: string;
  fields: { name: string; dataTypeID: number }[];
}

function toPgResult(sql: string, result: Results<unknown>): PgResult {
  const command = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? '';
  return {
    rows: result.rows,
    rowCount: result.affectedRows ?? result.rows.length,
    command,
    fields: result.fields,
  };
}

/** A FIFO mutex: the single PGlite session is leased to one connection at a time. */
class Lease {
  private held = false;
  private readonly waiters: (() => void)[] = [];

  async acquire(): Promise<void> {
    if (!this.held) {
      this.held = true;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.held = false;
  }
}

class PGliteConnection extends EventEmitter {
  constructor(private readonly db: PGlite) {
    super();
  }

  query(
    sql: string,
    paramsOrCallback?: unknown[] | Callback<PgResult>,
    callback?: Callback<PgResult>,
  ): Promise<PgResult> {
    const params = Array.isArray(paramsOrCallback) ? paramsOrCallback : undefined;
    const cb = typeof paramsOrCallback === 'function' ? paramsOrCallback : callback;
    // Parameterless text may hold several statements (migrations): exec() runs them all and
    // answers with the last result, as node-postgres' simple query protocol does.
    const run =
      params && params.length > 0
        ? this.db.query(sql, params).then((result) => toPgResult(sql, result))
        : this.db.exec(sql).then((results) => toPgResult(sql, results[results.length - 1] ?? { rows: [], fields: [] }));
    return run.then(
      (result) => {
        cb?.(null, result);
        return result;
      },
      (error: Error) => {
        cb?.(error);
        throw error;
      },
    );
  }
}

/**
 * One PGlite instance. PGlite (a 9 MB WebAssembly module) is loaded here, at the first connection,
 * so code that only imports the database layer (and every process on PostgreSQL) never loads it.
 * A new data directory starts as a copy of the build's template (pglite-template.ts) instead of
 * running initdb.
 */
/** Where one instance keeps its files (in memory when no dataDir), and the template a new dataDir copies. */
export interface PgliteTarget {
  dataDir?: string;
  template?: string | null;
}

async function create(options: PgliteTarget): Promise<PGlite> {
  // require, not import(): the package's CommonJS build, whose types are the ones imported above.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { PGlite } = require('@electric-sql/pglite') as typeof import('@electric-sql/pglite');
  if (options.dataDir && options.template !== null) seedFromTemplate(options.dataDir, options.template);
  const pgliteOptions: PGliteOptions = {
    dataDir: options.dataDir,
    startParams: [...PGlite.defaultStartParams, ...PGLITE_SETTINGS.flatMap((setting) => ['-c', setting])],
    // PostgreSQL's own boolean literals, as node-postgres sends them.
    serializers: { [BOOL_OID]: (value: unknown) => (value ? 'true' : 'false') },
  };
  // PGlite's PostgreSQL is compiled by V8's baseline compiler only (Liftoff): the optimising tier
  // would keep a second, larger copy of the code of a 9 MB module resident (40-70 MB of RSS) for
  // no measurable gain on the gateway's short statements (bench/results/pglite-footprint.json).
  // The flag is read when a module is compiled: set for PGlite's, restored right after.
  setFlagsFromString('--liftoff-only');
  try {
    return await PGlite.create(pgliteOptions);
  } finally {
    setFlagsFromString('--no-liftoff-only');
  }
}

/** What TypeORM's postgres driver needs from a `pg` module: a Pool class. */
export function pgliteDriver(options: PgliteTarget): { Pool: new () => EventEmitter } {
  let instance: Promise<PGlite> | null = null;
  const lease = new Lease();
  const open = (): Promise<PGlite> => (instance ??= create(options));

  class PGlitePool extends EventEmitter {
    connect(callback: (error: Error | null, client?: PGliteConnection, release?: () => void) => void): void {
      Promise.all([open(), lease.acquire()]).then(
        ([db]) => {
          let released = false;
          callback(null, new PGliteConnection(db), () => {
            if (released) return;
            released = true;
            lease.release();
          });
        },
        (error: Error) => callback(error),
      );
    }

    /** pg.Pool's query(): one statement on a leased session (timeouts do not apply in-process). */
    async query(config: { text: string; values?: unknown[] }): Promise<PgResult> {
      const [db] = await Promise.all([open(), lease.acquire()]);
      try {
        return await new PGliteConnection(db).query(config.text, config.values ?? []);
      } finally {
        lease.release();
      }
    }

    end(callback?: (error?: Error) => void): void {
      const closing = instance ? instance.then((db) => db.close()) : Promise.resolve();
      instance = null;
      closing.then(
        () => callback?.(),
        (error: Error) => callback?.(error),
      );
    }
  }
  return { Pool: PGlitePool };
}
