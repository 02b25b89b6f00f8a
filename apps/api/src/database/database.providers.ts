/** The API's TypeORM DataSource as a Nest provider: initialized at boot, destroyed at shutdown. */
import { Inject, Injectable, OnApplicationShutdown, Provider } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { createDataSource } from './data-source';

export const DATA_SOURCE = Symbol('DATA_SOURCE');

export const dataSourceProvider: Provider = {
  provide: DATA_SOURCE,
  inject: [API_CONFIG],
  useFactory: async (config: ApiConfig): Promise<DataSource> => createDataSource(config.databaseUrl).initialize(),
};

@Injectable()
export class DataSourceCloser implements OnApplicationShutdown {
  constructor(@Inject(DATA_SOURCE) private readonly dataSource: DataSource) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
