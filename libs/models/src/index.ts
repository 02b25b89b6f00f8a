export * from './chat-template';
export * from './decoder-session';
export * from './model-config';
export * from './model-error';
export * from './model-files';
export * from './model-loader';
export * from './tokenizer';
export * from './model-pool';
