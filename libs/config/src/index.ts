export * from './worker-config';
export * from './quiet-logger';
