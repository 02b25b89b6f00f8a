import { DynamicModule, Global, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { Tracing, TRACING_DISABLED, TracingModule } from '@switchyard/telemetry';
import { KeysController } from './admin/keys.controller';
import { ModelsAdminController } from './admin/models.controller';
import { UsageController } from './admin/usage.controller';
import { WorkersController } from './admin/workers.controller';
import { ApiKeysService } from './auth/api-keys.service';
import { AuthGuard } from './auth/auth.guard';
import { RateLimiter } from './limits/rate-limiter.service';
import { UsageService } from './usage/usage.service';
import { ErrorFilter } from './common/error.filter';
import { API_CONFIG, ApiConfig } from './config/api-config';
import { DatabaseModule } from './database/database.module';
import { QueuesModule } from './redis/queues.module';
import { DocsController } from './docs/docs.controller';
import { GenerationService } from './generation/generation.service';
import { InferenceService } from './generation/inference.service';
import { StreamHub } from './generation/stream-hub';
import { TokenizerThread } from './generation/tokenizer-thread';
import { DependencyMonitor } from './health/dependencies';
import { HealthController } from './health/health.controller';
import { InfoController } from './info/info.controller';
import { ApiMetrics } from './metrics/api-metrics';
import { MetricsController } from './metrics/metrics.controller';
import { CompletionsController } from './openai/completions.controller';
import { ModelsController } from './openai/models.controller';
import { RedisService } from './redis/redis.service';
import { WorkerDirectory } from './redis/worker-directory.service';
import { ModelRegistry } from './registry/model-registry.service';
import { GenerateController } from './tgi/generate.controller';
import { TokenizeController } from './tgi/tokenize.controller';

/** The process's config, global so that the store modules' async factories can inject it. */
@Global()
@Module({})
class ApiConfigModule {
  static forRoot(config: ApiConfig): DynamicModule {
    return { module: ApiConfigModule, providers: [{ provide: API_CONFIG, useValue: config }], exports: [API_CONFIG] };
  }
}

@Module({})
export class AppModule {
  static forRoot(config: ApiConfig, tracing: Tracing = TRACING_DISABLED): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ApiConfigModule.forRoot(config),
        TracingModule.forRoot(tracing),
        DatabaseModule.forRoot(),
        QueuesModule.forRoot(),
      ],
      controllers: [
        HealthController,
        InfoController,
        MetricsController,
        TokenizeController,
        ModelsController,
        DocsController,
        KeysController,
        ModelsAdminController,
        WorkersController,
        UsageController,
        CompletionsController,
        // last: it owns `POST /`
        GenerateController,
      ],
      providers: [
        { provide: APP_FILTER, useClass: ErrorFilter },
        { provide: APP_GUARD, useClass: AuthGuard },
        ApiKeysService,
        RateLimiter,
        UsageService,
        RedisService,
        WorkerDirectory,
        StreamHub,
        TokenizerThread,
        ModelRegistry,
        GenerationService,
        InferenceService,
        ApiMetrics,
        DependencyMonitor,
      ],
    };
  }
}
