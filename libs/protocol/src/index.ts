export * from './protocol';
export * from './redis-connection';
export * from './worker-registry';
export * from './metrics';
export * from './parse';
