import { DynamicModule, Module } from '@nestjs/common';
import { API_CONFIG, ApiConfig } from './config/api-config';
import { HealthController } from './health/health.controller';
import { InfoController } from './info/info.controller';
import { SERVED_MODEL, ServedModel } from './model/served-model';

@Module({})
export class AppModule {
  static forRoot(config: ApiConfig, model: ServedModel): DynamicModule {
    return {
      module: AppModule,
      controllers: [HealthController, InfoController],
      providers: [
        { provide: API_CONFIG, useValue: config },
        { provide: SERVED_MODEL, useValue: model },
      ],
    };
  }
}
