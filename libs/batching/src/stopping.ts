/**
 * The stop check: one pure function over a row after it chose a token. Stop sequences are matched on the
 * decoded text, so one that spans several tokens is found when its last piece arrives.
 */
import type { FinishReason } from './types';

export interface StopCriteria {
  eosTokenIds: readonly number[];
  stop: readonly string[];
  maxNewTokens: number;
  /** The model's limit on prompt plus generated tokens. */
  maxTotalTokens: number;
}

export interface StopInput {
  tokenId: number;
  /** Generated tokens so far, this one included. */
  generatedTokens: number;
  inputTokens: number;
  /** The generated text so far, this token's text included. */
  text: string;
  /** How long `text` was before this token: only a stop sequence ending past it can be new. */
  previousTextLength: number;
}

/** The finish reason, or null when the row goes on. The end of the model's context counts as `length`. */
export function checkStop(input: StopInput, criteria: StopCriteria): FinishReason | null {
  if (criteria.eosTokenIds.includes(input.tokenId)) return 'eos_token';
  if (criteria.stop.length > 0 && input.text.length > input.previousTextLength) {
    for (const stop of criteria.stop) {
      const from = Math.max(0, input.previousTextLength - stop.length + 1);
      if (input.text.indexOf(stop, from) !== -1) return 'stop_sequence';
    }
  }
  if (input.generatedTokens >= criteria.maxNewTokens) return 'length';
  if (input.inputTokens + input.generatedTokens >= criteria.maxTotalTokens) return 'length';
  return null;
}
