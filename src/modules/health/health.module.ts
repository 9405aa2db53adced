/**
 * Readiness (API.md "Health"): the checks behind /readyz (ReadinessService: the database, Redis,
 * the required models' upstreams) and the upstream probes behind llm_backend_up
 * (BackendMonitor). The routes are the HTTP layer's (http/health/).
 */
import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { SchedulingModule } from '../scheduling/scheduling.module';
import { BackendMonitor } from './backend-monitor';
import { ReadinessService } from './readiness.service';

@Module({
  // Terminus' own logger is off: the controller logs readiness changes, not every failed probe.
  imports: [TerminusModule.forRoot({ logger: false }), SchedulingModule],
  providers: [ReadinessService, BackendMonitor],
  exports: [TerminusModule, ReadinessService, BackendMonitor],
})
export class HealthModule {}
