/**
 * The one TypeORM DataSource, shared by the app and the migration CLI. The schema only ever changes through
 * migrations in migrations/ (synchronize is off).
 */
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { ModelEntity } from '../registry/model.entity';
import { ApiKeyEntity } from '../auth/api-key.entity';

export function createDataSource(databaseUrl: string): DataSource {
  return new DataSource({
    type: 'postgres',
    url: databaseUrl,
    synchronize: false,
    migrationsRun: false,
    // dist/apps/api/src/database -> dist/migrations
    migrations: [join(__dirname, '../../../../migrations/*.js')],
    migrationsTableName: 'migrations',
    entities: [ModelEntity, ApiKeyEntity],
    logging: ['error'],
  });
}
