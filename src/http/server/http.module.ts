/**
 * The HTTP surface: every controller, and the modules they call. Controllers delegate to the
 * features in one line; the features never import this layer.
 */
import { type DynamicModule, Module } from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { AdminModule } from '../../modules/admin/admin.module';
import { AuthModule } from '../../modules/auth/auth.module';
import { ConsoleModule } from '../../modules/console/console.module';
import { HealthModule } from '../../modules/health/health.module';
import { LimitsModule } from '../../modules/limits/limits.module';
import { PipelineModule } from '../../modules/pipeline/pipeline.module';
import { AdminKeysController } from '../admin/admin-keys.controller';
import { AdminTeamsController } from '../admin/admin-teams.controller';
import { AdminOverviewController } from '../admin/admin-overview.controller';
import { ConsoleController } from '../admin/console.controller';
import { GenerationController } from '../generate/generate.controller';
import { AdminTokenGuard } from '../guards/admin-token.guard';
import { throttlerModule } from '../guards/rate-limit.guard';
import { HealthController } from '../health/health.controller';
import { MetricsController } from '../health/metrics.controller';
import { RootController } from '../health/root.controller';
import { EmbeddingsController } from '../openai/embeddings.controller';
import { ModelsController } from '../openai/models.controller';
import { OpenAiController } from '../openai/openai.controller';
import { GenerationResponder } from '../responses/generation-responder';

/** `module` with more imports: what the guards of its controllers need. */
function withImports(module: DynamicModule, ...imports: NonNullable<DynamicModule['imports']>): DynamicModule {
  return { ...module, imports: [...(module.imports ?? []), ...imports] };
}

@Module({})
export class HttpModule {
  static forRoot(): DynamicModule {
    const throttler = throttlerModule();
    return {
      module: HttpModule,
      imports: [
        PipelineModule,
        AuthModule,
        LimitsModule,
        AdminModule,
        HealthModule,
        ConsoleModule,
        throttler,
        // GET /metrics: our controller, serving this app's registry (which collects the process
        // defaults itself, infra/metrics/metrics.registry.ts); its token guard needs AuthModule.
        withImports(
          PrometheusModule.register({
            path: '/metrics',
            controller: MetricsController,
            defaultMetrics: { enabled: false },
          }),
          AuthModule,
        ),
      ],
      controllers: [
        GenerationController,
        OpenAiController,
        EmbeddingsController,
        ModelsController,
        AdminKeysController,
        AdminTeamsController,
        AdminOverviewController,
        ConsoleController,
        HealthController,
        RootController,
      ],
      providers: [GenerationResponder, AdminTokenGuard],
      // What the global guards (app.module.ts) need.
      exports: [AuthModule, LimitsModule, throttler],
    };
  }
}
