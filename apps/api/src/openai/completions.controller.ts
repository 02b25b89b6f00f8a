/**
 * OpenAI's generation routes: `POST /v1/chat/completions` (the prompt is the model's chat template applied to
 * `messages`) and `POST /v1/completions`. Both stream as OpenAI does (chunks, then `data: [DONE]`), report
 * `usage`, honour `stream_options.include_usage`, and name the served model.
 */
import { Body, Controller, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { z } from 'zod';
import type { TokenEvent, TokenInfo } from '@switchyard/batching';
import { ChatTemplateError } from '@switchyard/models';
import { ApiError } from '../common/api-error';
import { sendError } from '../common/error.filter';
import { ApiRoute, ApiRouteSpec, TIMING_HEADERS } from '../docs/api-route';
import { GENERATION_ERRORS } from '../docs/error-responses';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { InferenceService, PreparedRequest, timingHeaders } from '../generation/inference.service';
import type { ResolvedModel } from '../registry/model-registry.service';
import {
  choiceLogprobs,
  includeUsage,
  openAiFinishReason,
  requestedLogprobs,
  sse,
  toTgiParameters,
  usage,
} from './openai-params';
import {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  Completion,
  CompletionChunk,
  CompletionRequest,
} from './openai.schemas';

type Kind = 'chat' | 'completion';

/** OpenAI's default `max_tokens` for completions; chat has none (the rest of the model's context). */
const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

const STREAM_NOTE =
  'With `stream: true`, server-sent events `data: {...}` of chunks, then `data: [DONE]`. An error after the ' +
  'first chunk ends the stream with a `data: {"error":{...}}` event.';

type Body = ChatCompletionRequest | CompletionRequest;

/**
 * Both routes' spec: OpenAI's, answering the completion as JSON or, with `stream: true`, its chunks as server-sent
 * events, with the generation routes' errors.
 */
function completionRoute(
  spec: Pick<ApiRouteSpec, 'summary' | 'description' | 'operationId'> & {
    body: z.ZodType;
    completion: z.ZodType;
    chunk: z.ZodType;
  },
): ApiRouteSpec {
  const { completion, chunk, ...route } = spec;
  return {
    tag: 'openai',
    ...route,
    responses: {
      200: {
        description: 'The completion, or a stream of chunks (whose headers carry no timings).',
        headers: TIMING_HEADERS,
        content: { 'application/json': { schema: completion }, 'text/event-stream': { schema: chunk } },
      },
    },
    errors: GENERATION_ERRORS,
  };
}

@Controller('v1')
export class CompletionsController {
  constructor(
    private readonly inference: InferenceService,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  @Post('chat/completions')
  @HttpCode(200)
  @ApiRoute(
    completionRoute({
      summary: 'Chat completion',
      description:
        "OpenAI's chat completions: `messages` go through the model's chat template (422 if it has none). " +
        STREAM_NOTE,
      operationId: 'createChatCompletion',
      body: ChatCompletionRequest,
      completion: ChatCompletion,
      chunk: ChatCompletionChunk,
    }),
  )
  async chat(@Body() raw: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const body = this.inference.parse(req, '/v1/chat/completions', ChatCompletionRequest, raw);
    const messages = body.messages.map((m) => ({
      role: m.role === 'developer' ? 'system' : m.role,
      content: typeof m.content === 'string' ? m.content : m.content.map((part) => part.text).join(''),
    }));
    const { logprobs, parameters } = this.parameters('chat', body);
    const stream = body.stream === true;
    await this.respond('chat', body, logprobs, req, res, (model) => {
      const template = model.description.chatTemplate;
      if (!template) throw ApiError.validation(`model ${model.spec.id} has no chat template: use /v1/completions`);
      let prompt: string;
      try {
        prompt = template.render(messages, { addGenerationPrompt: true });
      } catch (err) {
        if (err instanceof ChatTemplateError) throw ApiError.validation(err.message);
        throw err;
      }
      return this.inference.prepare(req, model, prompt, parameters, { stream });
    });
  }

  @Post('completions')
  @HttpCode(200)
  @ApiRoute(
    completionRoute({
      summary: 'Text completion',
      description: "OpenAI's (legacy) completions: the prompt as it is. `max_tokens` defaults to 16. " + STREAM_NOTE,
      operationId: 'createCompletion',
      body: CompletionRequest,
      completion: Completion,
      chunk: CompletionChunk,
    }),
  )
  async completions(@Body() raw: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const body = this.inference.parse(req, '/v1/completions', CompletionRequest, raw);
    const { prompt } = body;
    const { logprobs, parameters } = this.parameters('completion', body);
    if (body.echo === true) parameters.return_full_text = true;
    const stream = body.stream === true;
    await this.respond('completion', body, logprobs, req, res, (model) =>
      this.inference.prepare(req, model, prompt, parameters, { stream }),
    );
  }

  /**
   * The request's TGI parameters, and the alternatives per token its `logprobs` asks for (`requestedLogprobs`),
   * which the engine is asked for as TGI's `top_n_tokens`, within `--max-top-n-tokens`.
   */
  private parameters(kind: Kind, body: Body): { logprobs: number | null; parameters: Record<string, unknown> } {
    const logprobs = requestedLogprobs(body, kind);
    const parameters = toTgiParameters(body, kind === 'chat' ? null : COMPLETIONS_DEFAULT_MAX_TOKENS);
    if (logprobs !== null && logprobs !== 0) {
      const max = this.config.maxTopNTokens;
      const field = kind === 'chat' ? 'top_logprobs' : 'logprobs';
      if (logprobs > max) {
        throw ApiError.validation(`\`${field}\` must be at most ${max} on this server (--max-top-n-tokens)`);
      }
      parameters.top_n_tokens = logprobs;
    }
    return { logprobs, parameters };
  }

  /**
   * Streams or answers the request as OpenAI does. `logprobs` (from `requestedLogprobs`): null, or the choice
   * carries each generated token's logprob with that many alternatives; special tokens are left out, as they are
   * of the text.
   */
  private async respond(
    kind: Kind,
    body: Body,
    logprobs: number | null,
    req: Request,
    res: Response,
    build: (model: ResolvedModel) => PreparedRequest | Promise<PreparedRequest>,
  ): Promise<void> {
    const requestId = this.inference.requestId(req);
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${requestId}`;
    const created = Math.floor(Date.now() / 1000);
    const fingerprint = `switchyard-${this.config.version}`;
    const object = kind === 'chat' ? 'chat.completion' : 'text_completion';
    const route = kind === 'chat' ? '/v1/chat/completions' : '/v1/completions';
    if (body.stream !== true) {
      const served = await this.inference.serve(req, res, {
        route,
        model: body.model,
        fallbacks: body.fallbacks,
        keepAlive: body.keep_alive,
        stream: false,
        build,
      });
      const { prepared, outcome } = served;
      const { final } = outcome;
      const text = prepared.parameters.returnFullText ? prepared.inputText + final.generatedText : final.generatedText;
      const finish_reason = openAiFinishReason(final.details.finishReason);
      let lp: unknown = null;
      if (logprobs !== null) {
        const { tokens, topTokens } = final.details;
        const kept = tokens.flatMap((token, i) => (token.special ? [] : [i]));
        lp = choiceLogprobs(
          kind,
          kept.map((i) => tokens[i]),
          kept.map((i) => topTokens[i] ?? []),
          0,
        );
      }
      const choice =
        kind === 'chat'
          ? { index: 0, message: { role: 'assistant', content: text }, logprobs: lp, finish_reason }
          : { index: 0, text, logprobs: lp, finish_reason };
      res.set(timingHeaders(served));
      res.json({
        id,
        object,
        created,
        model: prepared.model.spec.id,
        system_fingerprint: fingerprint,
        choices: [choice],
        usage: usage(final.inputTokens, final.details.generatedTokens),
      });
      return;
    }

    const withUsage = includeUsage(body);
    const chunkObject = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    let model = '';
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      sse({
        id,
        object: chunkObject,
        created,
        model,
        system_fingerprint: fingerprint,
        choices,
        ...(withUsage ? { usage: null } : {}),
        ...extra,
      });
    const delta = (text: string, finish: string | null = null, lp: unknown = null) =>
      kind === 'chat'
        ? { index: 0, delta: text === '' && finish ? {} : { content: text }, logprobs: lp, finish_reason: finish }
        : { index: 0, text, logprobs: lp, finish_reason: finish };
    let offset = 0;
    /** A streamed token's chunk, with its logprobs when asked for. */
    const tokenChunk = (token: TokenInfo, top: TokenInfo[]) => {
      let lp: unknown = null;
      if (logprobs !== null) {
        lp = choiceLogprobs(kind, [token], [top], offset);
        offset += token.text.length;
      }
      return chunk([delta(token.text, null, lp)]);
    };
    const open = (prepared: PreparedRequest) => {
      if (res.headersSent) return;
      model = prepared.model.spec.id;
      res.status(200).set({
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
        'x-served-model': model,
      });
      if (kind === 'chat') {
        res.write(
          chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
        );
      } else if (prepared.parameters.returnFullText) {
        res.write(chunk([delta(prepared.inputText)]));
      }
    };
    try {
      const { prepared, outcome } = await this.inference.serve(req, res, {
        route,
        model: body.model,
        fallbacks: body.fallbacks,
        keepAlive: body.keep_alive,
        stream: true,
        build,
        onToken: (event: TokenEvent, current) => {
          open(current);
          if (!event.token.special) res.write(tokenChunk(event.token, event.topTokens));
        },
      });
      open(prepared);
      const { final, lastToken } = outcome;
      if (lastToken && !lastToken.token.special) res.write(tokenChunk(lastToken.token, lastToken.topTokens));
      res.write(chunk([delta('', openAiFinishReason(final.details.finishReason))]));
      if (withUsage) {
        res.write(chunk([], { usage: usage(final.inputTokens, final.details.generatedTokens) }));
      }
      res.write('data: [DONE]\n\n');
      res.end();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.errorType === 'cancelled') {
        res.end(); // nobody is listening, but an unfinished response would hold a stopping server open
        return;
      }
      sendError(req, res, err);
    }
  }
}
