/**
 * Liveness, readiness and the shutdown state: /healthz, /readyz (Terminus), the upstream
 * probes behind llm_backend_up, and ShutdownState, which the graceful shutdown in server.ts
 * flips so /readyz fails at once while requests drain.
 */
import { Global, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { GenerationModule } from '../generation/generation.module';
import { BackendMonitor } from './backend-monitor';
import { HealthController } from '../../http/health/health.controller';
import { ReadinessService } from './readiness.service';
import { ShutdownState } from '../../infra/lifecycle/shutdown-state';

@Global()
@Module({
  // Terminus' own logger is off: the controller logs readiness changes, not every failed probe.
  imports: [TerminusModule.forRoot({ logger: false }), GenerationModule],
  controllers: [HealthController],
  providers: [ShutdownState, ReadinessService, BackendMonitor],
  exports: [ShutdownState, BackendMonitor],
})
export class HealthModule {}
