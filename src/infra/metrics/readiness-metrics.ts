/**
 * Readiness as metrics, observed from the /readyz answers (what Kubernetes probes and load
 * balancers see), so alerts can tell a replica that is not ready from one whose readiness
 * flaps:
 * - llm_gateway_ready: the last answer, 1 for 200 and 0 otherwise (503, draining included).
 *   It appears with the first /readyz call: a replica nobody probes has no readiness to report,
 *   and an absent series cannot raise a false "not ready".
 * - llm_gateway_readiness_changes_total: every change between the two, also those that happen
 *   between two scrapes (a gauge alone would hide them). The first answer is not a change.
 * A probe whose client went away before the answer is not counted.
 */
import { Inject, Injectable } from '@nestjs/common';
import { Counter, Gauge, type Registry } from 'prom-client';
import { METRICS } from './metric-names';
import { METRICS_REGISTRY } from './metrics.registry';

@Injectable()
export class ReadinessMetrics {
  private readonly ready: Gauge;
  private readonly changes: Counter;
  private last: boolean | null = null;

  constructor(@Inject(METRICS_REGISTRY) private readonly registry: Registry) {
    const { gatewayReady, readinessChanges } = METRICS;
    // Registered on the first answer: a metric without labels would otherwise show 0 at once.
    this.ready = new Gauge({ name: gatewayReady.name, help: gatewayReady.help, registers: [] });
    this.changes = new Counter({ name: readinessChanges.name, help: readinessChanges.help, registers: [registry] });
  }

  /** One /readyz answer. */
  answered(ready: boolean): void {
    if (this.last === null) this.registry.registerMetric(this.ready);
    this.ready.set(ready ? 1 : 0);
    if (this.last !== null && this.last !== ready) this.changes.inc();
    this.last = ready;
  }
}
