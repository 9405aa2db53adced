/**
 * A local append-only journal of JSON lines, one file per process in a directory under DATA_DIR:
 * what must survive a crash before it reaches the database (usage not yet written). A line is
 * written with one synchronous write() before the caller goes on, so a process that dies (kill
 * -9, an OOM kill) loses nothing it appended; a machine that loses power can lose what the page
 * cache held (fsync runs at each compaction and at most every FSYNC_INTERVAL_MS).
 *
 * Files of processes that are gone (a crash, a restart, another worker that died) are adopted at
 * start: the caller takes over their pending work and then removes them. A file belongs to a
 * process that is gone when it was written on this host by a pid that is not running (or is
 * ours but not open here: a restarted container reuses its pid), or on another host (a shared
 * volume) and not touched for STALE_FOREIGN_MS (a live owner touches its file every
 * TOUCH_INTERVAL_MS).
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

const FSYNC_INTERVAL_MS = 200;
export const TOUCH_INTERVAL_MS = 30_000;
const STALE_FOREIGN_MS = 120_000;

export interface AdoptedJournal {
  file: string;
  /** Its lines, parsed; a torn last line (a crash mid-write) is left out. */
  lines: unknown[];
}

function parseLines(text: string): unknown[] {
  const lines: unknown[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      lines.push(JSON.parse(line));
    } catch {
      // a line cut by a crash mid-write: nothing after it was acknowledged
    }
  }
  return lines;
}

/** Journals open in this process (several apps may run in one process: tests). */
const openHere = new Set<string>();
let opened = 0;

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class JournalFile {
  readonly file: string;
  private fd: number;
  private lastSync = 0;
  private lastTouch = Date.now();

  private constructor(dir: string, name: string) {
    opened += 1;
    this.file = join(dir, `${name}.${hostname()}.${process.pid}.${opened}.jsonl`);
    this.fd = openSync(this.file, 'a');
    openHere.add(this.file);
  }

  /**
   * Opens this process's journal in `dir` (files named `<name>.<host>.<pid>.<n>.jsonl`) and returns
   * the journals of processes that are gone, for the caller to take over (then call remove()).
   */
  static open(dir: string, name: string): { journal: JournalFile; adopted: AdoptedJournal[] } {
    mkdirSync(dir, { recursive: true });
    const adopted: AdoptedJournal[] = [];
    const host = hostname();
    for (const entry of readdirSync(dir)) {
      const match = /^([^.]+)\.(.+)\.(\d+)\.(\d+)\.jsonl$/.exec(entry);
      if (!match || match[1] !== name) continue;
      const file = join(dir, entry);
      const [, , fileHost, pidText] = match;
      const pid = Number(pidText);
      const gone =
        fileHost === host
          ? pid === process.pid
            ? !openHere.has(file)
            : !isRunning(pid)
          : Date.now() - statSync(file).mtimeMs > STALE_FOREIGN_MS;
      if (gone) adopted.push({ file, lines: parseLines(readFileSync(file, 'utf8')) });
    }
    return { journal: new JournalFile(dir, name), adopted };
  }

  /** Appends one line; synchronous, so it is in the file before the caller goes on. */
  append(line: object): void {
    writeSync(this.fd, `${JSON.stringify(line)}\n`);
    const now = Date.now();
    if (now - this.lastSync >= FSYNC_INTERVAL_MS) {
      fsyncSync(this.fd);
      this.lastSync = now;
    }
    this.lastTouch = now;
  }

  /** Replaces the journal with `lines` (what is still pending), atomically. */
  rewrite(lines: object[]): void {
    const next = `${this.file}.next`;
    const fd = openSync(next, 'w');
    try {
      if (lines.length > 0) writeSync(fd, lines.map((line) => `${JSON.stringify(line)}\n`).join(''));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    closeSync(this.fd);
    renameSync(next, this.file);
    this.fd = openSync(this.file, 'a');
    this.lastSync = this.lastTouch = Date.now();
  }

  /** Keeps the file's mtime fresh while idle, so no process on another host adopts it. */
  touch(): void {
    if (Date.now() - this.lastTouch < TOUCH_INTERVAL_MS) return;
    const now = new Date();
    utimesSync(this.file, now, now);
    this.lastTouch = now.getTime();
  }

  /** Removes an adopted journal once its work is in this one. */
  remove(file: string): void {
    rmSync(file, { force: true });
  }

  close(): void {
    fsyncSync(this.fd);
    closeSync(this.fd);
    openHere.delete(this.file);
  }

  /** Whether this journal holds nothing (so nothing is lost if it is removed). */
  get empty(): boolean {
    return !existsSync(this.file) || statSync(this.file).size === 0;
  }
}
