/**
 * WORKERS > 1 (CONFIG.md): this process is the primary of node:cluster and serves nothing
 * itself. It starts that many workers (each the whole server, main.ts, sharing the port and
 * ADMIN_PORT through the cluster), answers their /metrics with every worker's merged
 * (infra/metrics/cluster-metrics.ts), and:
 * - restarts a worker that dies, and logs it (a crash loop is slowed, never given up on: the
 *   others keep serving meanwhile);
 * - stops everything when a worker fails before it ever listened (a configuration the server
 *   cannot start with, a migration that fails): restarting would fail the same way;
 * - on SIGTERM/SIGINT passes the signal to every worker, each drains as one server does
 *   (graceful-shutdown.ts), and exits once they all have (1 if any did not exit cleanly); a
 *   second signal kills them at once.
 * Workers share limits, cache and keys through PostgreSQL and Redis (config refuses WORKERS > 1
 * without them).
 */
import cluster, { type Worker } from 'node:cluster';
import type { AppConfig } from './infra/config/app.config';
import type { AppLogger } from './infra/logging/logger';
import { answerWorkerScrapes } from './infra/metrics/cluster-metrics';

/** Restart delay after a crash: doubled per crash within the last minute, capped. */
const RESTART_BASE_MS = 250;
const RESTART_MAX_MS = 10_000;
const CRASH_WINDOW_MS = 60_000;

export function runWorkers(config: AppConfig, logger: AppLogger, exit: (code: number) => void): void {
  answerWorkerScrapes();
  const listened = new Set<number>();
  const crashes: number[] = [];
  let stopping = false;
  let exitCode = 0;

  const fork = (): Worker => {
    const worker = cluster.fork();
    worker.once('listening', () => listened.add(worker.id));
    return worker;
  };
  const alive = () => Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => !!worker);
  const stop = (signal: NodeJS.Signals) => {
    stopping = true;
    for (const worker of alive()) worker.process.kill(signal);
    if (alive().length === 0) exit(exitCode);
  };

  cluster.on('exit', (worker, code, signal) => {
    const clean = code === 0 && signal === null;
    if (stopping) {
      if (!clean) exitCode = 1;
      if (alive().length === 0) {
        logger.info({ exit_code: exitCode }, 'every worker has stopped');
        exit(exitCode);
      }
      return;
    }
    if (!listened.has(worker.id)) {
      logger.error(
        { worker: worker.id, pid: worker.process.pid, code, signal },
        'a worker exited before it served: stopping (see its error above)',
      );
      exitCode = 1;
      stop('SIGTERM');
      return;
    }
    const now = Date.now();
    while (crashes.length > 0 && now - crashes[0] > CRASH_WINDOW_MS) crashes.shift();
    crashes.push(now);
    const delayMs = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (crashes.length - 1));
    logger.error(
      { worker: worker.id, pid: worker.process.pid, code, signal, restart_in_ms: delayMs },
      'a worker died: starting another',
    );
    setTimeout(() => {
      if (!stopping) fork();
    }, delayMs);
  });

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      logger.warn({ signal }, 'second signal: killing the workers');
      exitCode = 1;
      stop('SIGKILL');
      return;
    }
    signalled = true;
    logger.info({ signal, workers: alive().length }, 'draining every worker');
    stop('SIGTERM');
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  for (let i = 0; i < config.workers; i += 1) fork();
  logger.info({ workers: config.workers, pid: process.pid }, `starting ${config.workers} workers`);
}
