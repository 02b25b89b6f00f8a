/** TGI's response bodies and stream events, built from the engine's events and typed by their schemas. */
import type { FinalEvent, SequenceDetails, TokenEvent, TokenInfo } from '@switchyard/batching';
import type { Details, GenerateResponse, StreamResponse, Token } from './tgi.schemas';

function token(t: TokenInfo): Token {
  return { id: t.id, text: t.text, logprob: t.logprob, special: t.special };
}

function sequenceDetails(d: SequenceDetails, withTopTokens: boolean): Details {
  return {
    finish_reason: d.finishReason,
    generated_tokens: d.generatedTokens,
    seed: d.seed,
    prefill: d.prefill.map((p) => ({ id: p.id, text: p.text, logprob: p.logprob })),
    tokens: d.tokens.map(token),
    ...(withTopTokens ? { top_tokens: d.topTokens.map((list) => list.map(token)) } : {}),
  };
}

/** The body of `POST /generate`. */
export function generateResponse(final: FinalEvent, opts: { details: boolean; topNTokens: number }): GenerateResponse {
  const body: GenerateResponse = {
    // the engine's text, which already starts with the prompt under `return_full_text`
    generated_text: final.generatedText,
  };
  if (opts.details) {
    const withTop = opts.topNTokens > 0;
    body.details = {
      ...sequenceDetails(final.details, withTop),
      ...(final.details.bestOfSequences
        ? {
            best_of_sequences: final.details.bestOfSequences.map((s) => ({
              generated_text: s.generatedText,
              ...sequenceDetails(s, withTop),
            })),
          }
        : {}),
    };
  }
  return body;
}

/** One SSE event of `generate_stream` for a token that is not the last. */
export function streamTokenEvent(event: TokenEvent): string {
  return `data:${JSON.stringify({
    index: event.index + 1,
    token: token(event.token),
    top_tokens: event.topTokens.map(token),
    generated_text: null,
    details: null,
  } satisfies StreamResponse)}\n\n`;
}

/** The last SSE event: the last token, the whole text, and the details when asked for. */
export function streamFinalEvent(last: TokenEvent, final: FinalEvent, opts: { details: boolean }): string {
  return `data:${JSON.stringify({
    index: last.index + 1,
    token: token(last.token),
    top_tokens: last.topTokens.map(token),
    generated_text: final.generatedText,
    details: opts.details
      ? {
          finish_reason: final.details.finishReason,
          generated_tokens: final.details.generatedTokens,
          seed: final.details.seed,
          input_length: final.inputTokens,
        }
      : null,
  } satisfies StreamResponse)}\n\n`;
}
