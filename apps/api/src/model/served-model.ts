/** The default model's description (config, tokenizer, limits), read once at boot without an ONNX session. */
import type { ModelDescription } from '@switchyard/models';

export const SERVED_MODEL = Symbol('SERVED_MODEL');

export interface ServedModel {
  name: string;
  description: ModelDescription;
}
