/**
 * Each application instance gets its own prom-client Registry instead of the process-global
 * default one: several apps can live in one process (tests boot many, two replicas in one test)
 * without "already registered" errors, and each /metrics shows only its own app's values.
 */
import { Registry } from 'prom-client';

export const METRICS_REGISTRY = Symbol('METRICS_REGISTRY');

export function createMetricsRegistry(): Registry {
  return new Registry();
}
