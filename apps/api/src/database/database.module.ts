/**
 * The API's Postgres: TypeOrmModule on the shared DataSource options (data-source.ts), initialized at boot and
 * destroyed at shutdown (after every beforeApplicationShutdown hook, so usage records are flushed first), and the
 * repositories of its entities for @InjectRepository.
 */
import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ApiKeyEntity } from '../auth/api-key.entity';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { ModelEntity } from '../registry/model.entity';
import { dataSourceOptions } from './data-source';

@Module({})
export class DatabaseModule {
  static forRoot(): DynamicModule {
    const features = TypeOrmModule.forFeature([ApiKeyEntity, ModelEntity]);
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [API_CONFIG],
          useFactory: (config: ApiConfig) => ({
            ...dataSourceOptions(config.databaseUrl),
            // Start-up fails at once when Postgres cannot be reached, as it did before TypeOrmModule (whose default
            // is 9 retries 3 s apart): the launcher has just migrated, so Postgres answered a moment ago, and an API
            // started on its own is restarted by its supervisor, which says why. Once up, an outage is ridden out
            // (last good keys and registry rows, buffered usage; health/dependencies.ts).
            retryAttempts: 0,
            toRetry: () => false,
          }),
        }),
        features,
      ],
      exports: [features],
    };
  }
}
