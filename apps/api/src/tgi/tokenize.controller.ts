/** TGI's `POST /tokenize`: the prompt's tokens with their text and character offsets, as the model sees them. */
import { Body, Controller, Headers, HttpCode, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import { IncrementalDetokenizer } from '@switchyard/batching';
import { principalOf } from '../auth/auth.guard';
import { ApiError } from '../common/api-error';
import { parseWith } from '../common/schema';
import { ApiRoute } from '../docs/api-route';
import { MODEL_ERRORS } from '../docs/error-responses';
import { InferenceService } from '../generation/inference.service';
import { TokenizeRequest, TokenizeResponse } from './tgi.schemas';

@Controller()
export class TokenizeController {
  constructor(private readonly inference: InferenceService) {}

  @Post('tokenize')
  @HttpCode(200)
  @ApiRoute({
    tag: 'tgi',
    summary: 'Tokenize a prompt',
    description: 'The tokens of `inputs` as the model sees them, with their text and offsets in the decoded text.',
    operationId: 'tokenize',
    modelHeader: true,
    body: TokenizeRequest,
    responses: { 200: { description: 'The tokens.', content: { 'application/json': { schema: TokenizeResponse } } } },
    errors: MODEL_ERRORS,
  })
  async tokenize(
    @Body() raw: unknown,
    @Req() req: Request,
    @Headers('x-model') header?: string,
  ): Promise<TokenizeResponse> {
    const { inputs, model } = parseWith(TokenizeRequest, raw);
    const resolved = await this.inference.model(model ?? header, principalOf(req));
    const { tokenizer } = resolved.description;
    const ids = await this.inference.promptIds(resolved, inputs, false);
    if (ids.length > resolved.limits.maxInputTokens) {
      throw ApiError.validation(`\`inputs\` tokens must be <= ${resolved.limits.maxInputTokens}. Given: ${ids.length}`);
    }
    // Offsets in the decoded text: each token spans what it adds to it, found as streaming finds it (a short window
    // decoded with and without the token), so the cost is linear in the prompt. A token inside an unfinished
    // character adds nothing; the one that completes it spans the whole character. A special token spans its string.
    const out: TokenizeResponse = [];
    const detokenizer = new IncrementalDetokenizer(tokenizer);
    let start = 0;
    for (const id of ids) {
      const own = tokenizer.decode([id]);
      const added = tokenizer.specialIds.has(id) ? own.length : detokenizer.push(id).length;
      out.push({ id, text: own, start, stop: start + added });
      start += added;
    }
    const rest = detokenizer.flush();
    if (rest && out.length > 0) out[out.length - 1].stop += rest.length;
    return out;
  }
}
