/**
 * Each application instance gets its own prom-client Registry instead of the process-global
 * default one: several apps can live in one process (tests boot many, two replicas in one test)
 * without "already registered" errors, and each /metrics shows only its own app's values.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import { shareWithPrimary } from './cluster-metrics';

export const METRICS_REGISTRY = Symbol('METRICS_REGISTRY');

/** A new registry holding the Node process defaults (CPU, memory, event loop lag, ...). */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  shareWithPrimary(registry); // WORKERS > 1: the primary merges every worker's
  return registry;
}
