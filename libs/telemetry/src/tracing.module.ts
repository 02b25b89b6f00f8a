/**
 * Tracing in a Nest app: the process's `Tracing` (started in its main, before the app), injectable, and its last
 * spans exported when the app shuts down. Nest runs this hook after the HTTP server has closed and the drain hooks
 * have run, so the spans of the requests that ended during the shutdown are among them.
 */
import { DynamicModule, Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import type { Tracing } from './tracing';

export const TRACING = Symbol('TRACING');

@Injectable()
class TracingShutdown implements OnApplicationShutdown {
  constructor(@Inject(TRACING) private readonly tracing: Tracing) {}

  onApplicationShutdown(): Promise<void> {
    return this.tracing.shutdown();
  }
}

@Global()
@Module({})
export class TracingModule {
  static forRoot(tracing: Tracing): DynamicModule {
    return {
      module: TracingModule,
      providers: [{ provide: TRACING, useValue: tracing }, TracingShutdown],
      exports: [TRACING],
    };
  }
}
