/**
 * TGI's generation routes: `POST /generate` (JSON), `POST /generate_stream` (SSE) and `POST /`, which answers
 * like TGI's compat route: an array when `stream` is false, an SSE stream when it is true. The model is the
 * body's `model`, the `x-model` header, or the launcher's default; `fallbacks` may name the request's own, and
 * `keep_alive` (Ollama's) how long the model stays resident once idle.
 */
import { Body, Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { TokenEvent } from '@switchyard/batching';
import { z } from 'zod';
import { ApiError } from '../common/api-error';
import { sendError } from '../common/error.filter';
import { ApiRoute, STREAM_HEADERS, TIMING_HEADERS } from '../docs/api-route';
import { GENERATION_ERRORS } from '../docs/error-responses';
import { InferenceService, PreparedRequest, timingHeaders } from '../generation/inference.service';
import { CompatGenerateRequest, GenerateRequest, GenerateResponse, StreamResponse } from './tgi.schemas';
import { generateResponse, streamFinalEvent, streamTokenEvent } from './tgi-format';

type GenerateBody = CompatGenerateRequest;

const STREAM_NOTE =
  'Server-sent events, `data:{...}` each: one per token, the last with `generated_text` (and `details`). ' +
  'An error before the first token is a plain HTTP error; after it, the stream ends with a ' +
  '`data:{"error","error_type"}` event.';

@Controller()
export class GenerateController {
  constructor(private readonly inference: InferenceService) {}

  @Post('generate')
  @HttpCode(200)
  @ApiRoute({
    tag: 'tgi',
    summary: 'Generate text',
    description: 'Generates from `inputs` with TGI `parameters` and answers once the generation ends.',
    operationId: 'generate',
    modelHeader: true,
    body: GenerateRequest,
    responses: {
      200: {
        description: 'The generated text, and its details when asked for.',
        headers: TIMING_HEADERS,
        content: { 'application/json': { schema: GenerateResponse } },
      },
    },
    errors: GENERATION_ERRORS,
  })
  async generate(@Body() raw: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    res.json(await this.runJson(this.inference.parse(req, '/generate', GenerateRequest, raw), req, res, '/generate'));
  }

  @Post('generate_stream')
  @ApiRoute({
    tag: 'tgi',
    summary: 'Generate text, token by token',
    description:
      'Generates as `POST /generate` does and streams the tokens as server-sent events. `best_of` > 1 and ' +
      '`decoder_input_details` are refused.',
    operationId: 'generateStream',
    modelHeader: true,
    body: GenerateRequest,
    responses: {
      200: {
        description: STREAM_NOTE,
        headers: STREAM_HEADERS,
        content: { 'text/event-stream': { schema: StreamResponse } },
      },
    },
    errors: GENERATION_ERRORS,
  })
  async generateStream(@Body() raw: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    await this.runStream(
      this.inference.parse(req, '/generate_stream', GenerateRequest, raw),
      req,
      res,
      '/generate_stream',
    );
  }

  /** TGI's compat route. */
  @Post()
  @ApiRoute({
    tag: 'tgi',
    summary: 'Generate, TGI compat route',
    description:
      "TGI's compat route: with `stream: false` (the default) it answers as `POST /generate`, in a one-item " +
      'array; with `stream: true`, as `POST /generate_stream`.',
    operationId: 'compatGenerate',
    modelHeader: true,
    body: CompatGenerateRequest,
    responses: {
      200: {
        description: `An array of one generated text, or, with \`stream: true\`, a stream (whose headers carry no timings). ${STREAM_NOTE}`,
        headers: TIMING_HEADERS,
        content: {
          'application/json': { schema: z.array(GenerateResponse).length(1) },
          'text/event-stream': { schema: StreamResponse },
        },
      },
    },
    errors: GENERATION_ERRORS,
  })
  async compat(@Body() raw: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const b = this.inference.parse(req, '/', CompatGenerateRequest, raw);
    if (b.stream === true) {
      await this.runStream(b, req, res, '/');
      return;
    }
    const result = await this.runJson(b, req, res, '/');
    res.status(200).json([result]);
  }

  private async runJson(b: GenerateBody, req: Request, res: Response, route: string) {
    const served = await this.inference.serve(req, res, {
      route,
      model: b.model ?? req.header('x-model'),
      fallbacks: b.fallbacks,
      keepAlive: b.keep_alive,
      stream: false,
      build: (model) => this.inference.prepare(req, model, b.inputs, b.parameters, { stream: false }),
    });
    res.set(timingHeaders(served));
    const { prepared, outcome } = served;
    return generateResponse(outcome.final, {
      details: prepared.wantDetails,
      topNTokens: prepared.parameters.topNTokens,
    });
  }

  /**
   * SSE: headers go out with the first token, so an error before it (validation, placement, overload, a model
   * that falls back) is still a plain HTTP answer; after it, an error is a `data:{"error",...}` event. The headers
   * are not flushed on their own: Node sends them in the same write as the first event.
   */
  private async runStream(b: GenerateBody, req: Request, res: Response, route: string): Promise<void> {
    const open = (prepared: PreparedRequest) => {
      if (res.headersSent) return;
      res.status(200).set({
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
        'x-served-model': prepared.model.spec.id,
        'x-compute-type': prepared.computeType,
      });
    };
    try {
      const { prepared, outcome } = await this.inference.serve(req, res, {
        route,
        model: b.model ?? req.header('x-model'),
        fallbacks: b.fallbacks,
        keepAlive: b.keep_alive,
        stream: true,
        build: (model) => this.inference.prepare(req, model, b.inputs, b.parameters, { stream: true }),
        onToken: (event, current) => {
          open(current);
          res.write(streamTokenEvent(event));
        },
      });
      open(prepared);
      const lastEvent: TokenEvent = outcome.lastToken ?? {
        type: 'token',
        index: Math.max(0, outcome.final.details.generatedTokens - 1),
        token: outcome.final.details.tokens.at(-1)!,
        topTokens: [],
      };
      res.write(
        streamFinalEvent(lastEvent, outcome.final, {
          details: prepared.wantDetails,
        }),
      );
      res.end();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      // nobody is listening: end the response all the same, so that its connection is free to close (a stopping
      // server waits for every unfinished response)
      if (err.errorType === 'cancelled') {
        res.end();
        return;
      }
      sendError(req, res, err);
    }
  }
}
