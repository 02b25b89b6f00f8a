/**
 * Errors raised while reading a model directory. Each one names the file at fault and the problem, so an
 * operator can fix the directory without reading a stack trace.
 */
export enum ModelErrorKind {
  /** A required file or directory is absent. */
  MissingFile = 'missing_file',
  /** A file exists but cannot be parsed (bad JSON, bad tokenizer, unreadable graph). */
  InvalidFile = 'invalid_file',
  /** config.json parses but lacks a field a decoder needs, or holds a nonsensical value. */
  InvalidConfig = 'invalid_config',
  /** The ONNX graph's inputs/outputs are not those of a decoder with a KV cache. */
  NotADecoder = 'not_a_decoder',
  /** The ONNX Runtime session could not be created (bad provider, out of memory, ...). */
  SessionFailed = 'session_failed',
}

export class ModelError extends Error {
  constructor(
    readonly kind: ModelErrorKind,
    /** The file or directory the problem is in. */
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'ModelError';
  }
}
