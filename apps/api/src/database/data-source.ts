/**
 * The one TypeORM DataSource configuration, shared by the app (TypeOrmModule, database.module.ts) and the
 * migration CLI and launcher (migrate.ts). The schema only ever changes through migrations in migrations/
 * (synchronize is off).
 */
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import type { PostgresConnectionOptions } from 'typeorm/driver/postgres/PostgresConnectionOptions';
import { ModelEntity } from '../registry/model.entity';
import { ApiKeyEntity } from '../auth/api-key.entity';

export function dataSourceOptions(databaseUrl: string): PostgresConnectionOptions {
  return {
    type: 'postgres',
    url: databaseUrl,
    synchronize: false,
    migrationsRun: false,
    // dist/apps/api/src/database -> dist/migrations
    migrations: [join(__dirname, '../../../../migrations/*.js')],
    migrationsTableName: 'migrations',
    entities: [ModelEntity, ApiKeyEntity],
    logging: ['error'],
  };
}

export function createDataSource(databaseUrl: string): DataSource {
  return new DataSource(dataSourceOptions(databaseUrl));
}
