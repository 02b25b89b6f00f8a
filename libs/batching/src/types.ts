/**
 * The engine's contract: what a validated request carries and what it emits. The API and the worker share
 * these types, so one definition serves the queue payload and the stream events.
 */

/** Why a sequence ended, with TGI's names. */
export type FinishReason = 'length' | 'eos_token' | 'stop_sequence';

/** TGI's `parameters`, after validation: every field has its final value. */
export interface GenerationParameters {
  doSample: boolean;
  /** 1 when absent; applies only when sampling. */
  temperature: number;
  topK: number | null;
  topP: number | null;
  typicalP: number | null;
  /** Hugging Face's multiplicative penalty over prompt and generated tokens; 1 is none. */
  repetitionPenalty: number;
  /** OpenAI's additive penalty, times the count of each token generated so far; 0 is none. */
  frequencyPenalty: number;
  /** The seed of the row's own generator; always set when sampling, so a result can be reproduced. */
  seed: number | null;
  maxNewTokens: number;
  stop: string[];
  details: boolean;
  decoderInputDetails: boolean;
  topNTokens: number;
  bestOf: number;
  returnFullText: boolean;
  truncate: number | null;
  /** Generate past the model's eos tokens (vLLM's `ignore_eos`): fixed-length outputs for benchmarks. */
  ignoreEos: boolean;
}

export interface TokenInfo {
  id: number;
  text: string;
  logprob: number;
  special: boolean;
}

/** A prompt token with its logprob under the model (null for the first one), for `decoder_input_details`. */
export interface PrefillToken {
  id: number;
  text: string;
  logprob: number | null;
}

export interface TokenEvent {
  type: 'token';
  /** 0-based index of the generated token. */
  index: number;
  token: TokenInfo;
  /** The `top_n_tokens` most likely tokens at this step, when asked for. */
  topTokens: TokenInfo[];
}

export interface SequenceDetails {
  finishReason: FinishReason;
  generatedTokens: number;
  seed: number | null;
  prefill: PrefillToken[];
  tokens: TokenInfo[];
  topTokens: TokenInfo[][];
}

export interface GenerationDetails extends SequenceDetails {
  /** With `best_of` > 1: the sequences that were not chosen. */
  bestOfSequences?: (SequenceDetails & { generatedText: string })[];
}

export interface FinalEvent {
  type: 'final';
  generatedText: string;
  details: GenerationDetails;
  /** Milliseconds waiting for admission, then from admission to the last token. */
  queueMs: number;
  inferenceMs: number;
  /** Prompt tokens after truncation. */
  inputTokens: number;
}

export interface ErrorEvent {
  type: 'error';
  /** TGI's error types: `cancelled` when the client went away, `generation` when the model failed. */
  errorType: 'cancelled' | 'generation' | 'overloaded' | 'validation';
  message: string;
}

export type EngineEvent = TokenEvent | FinalEvent | ErrorEvent;

/** A validated request as the engine takes it: token ids already computed, parameters final. */
export interface EngineRequest {
  id: string;
  inputIds: number[];
  /** The prompt's text, needed only for `return_full_text`. */
  inputText?: string;
  parameters: GenerationParameters;
  /** Aborting it cancels the request: dropped from the queue, or from the batch at the next step. */
  signal?: AbortSignal;
}

/** Receives a request's events in order; called synchronously from the engine loop, so it must not block. */
export type EventSink = (event: EngineEvent) => void;
