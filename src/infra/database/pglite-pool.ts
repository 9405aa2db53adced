/**
 * A node-postgres-shaped Pool over one embedded PGlite instance, given to TypeORM's postgres
 * driver as its `driver`. Why not typeorm-pglite: it keeps one PGlite per process in a static
 * singleton (two data sources in one process share and close each other's database) and hands
 * every caller the same session at once, so concurrent transactions interleave. Here each
 * data source owns its instance, and a connection is an exclusive lease on the single session:
 * a transaction holds the lease until it releases it, and other queries wait their turn.
 */
import { EventEmitter } from 'node:events';
import { PGlite, types, type PGliteOptions, type Results } from '@electric-sql/pglite';

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

/** What TypeORM's postgres driver needs from a `pg` module: a Pool class. */
export function pgliteDriver(options: { dataDir?: string; loadDataDir?: Blob }): { Pool: new () => EventEmitter } {
  let instance: Promise<PGlite> | null = null;
  const lease = new Lease();
  const pgliteOptions: PGliteOptions = {
    dataDir: options.dataDir,
    loadDataDir: options.loadDataDir,
    // PostgreSQL's own boolean literals, as node-postgres sends them.
    serializers: { [types.BOOL]: (value: unknown) => (value ? 'true' : 'false') },
  };
  const open = (): Promise<PGlite> => (instance ??= PGlite.create(pgliteOptions));

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

    /** The whole database as a tarball, to start another instance from (see DatabaseTarget.initialDump). */
    async dumpDataDir(): Promise<Blob> {
      const db = await open();
      await lease.acquire();
      try {
        return await db.dumpDataDir('none');
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
