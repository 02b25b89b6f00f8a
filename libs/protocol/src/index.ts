export * from './protocol';
export * from './redis-connection';
export * from './worker-registry';
