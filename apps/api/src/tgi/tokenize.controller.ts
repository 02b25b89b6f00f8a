/** TGI's `POST /tokenize`: the prompt's tokens with their text and character offsets, as the model sees them. */
import { Body, Controller, Headers, HttpCode, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import { principalOf } from '../auth/auth.guard';
import { ApiError } from '../common/api-error';
import { InferenceService } from '../generation/inference.service';

@Controller()
export class TokenizeController {
  constructor(private readonly inference: InferenceService) {}

  @Post('tokenize')
  @HttpCode(200)
  async tokenize(@Body() raw: unknown, @Req() req: Request, @Headers('x-model') header?: string) {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw ApiError.validation('the request body must be a JSON object with `inputs`');
    }
    const { inputs, model } = raw as { inputs?: unknown; model?: unknown };
    if (typeof inputs !== 'string') throw ApiError.validation('`inputs` must be a string');
    const resolved = await this.inference.model(model ?? header, principalOf(req));
    const { tokenizer } = resolved.description;
    const ids = tokenizer.encode(inputs);
    if (ids.length > resolved.limits.maxInputTokens) {
      throw ApiError.validation(`\`inputs\` tokens must be <= ${resolved.limits.maxInputTokens}. Given: ${ids.length}`);
    }
    // Offsets in the decoded text: each token spans what it adds to the decoding of the ones before it.
    const out: { id: number; text: string; start: number; stop: number }[] = [];
    let start = 0;
    for (let i = 0; i < ids.length; i++) {
      const stop = tokenizer.decode(ids.slice(0, i + 1)).length;
      out.push({ id: ids[i], text: tokenizer.decode([ids[i]]), start, stop });
      start = stop;
    }
    return out;
  }
}
