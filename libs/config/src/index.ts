export * from './config-error';
export * from './flag-table';
export * from './flag-values';
export * from './flags';
export * from './api-config';
export * from './worker-config';
export * from './convert-config';
export * from './quiet-logger';
