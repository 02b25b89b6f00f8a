/**
 * TGI's generation routes: `POST /generate` (JSON), `POST /generate_stream` (SSE) and `POST /`, which answers
 * like TGI's compat route: an array when `stream` is false, an SSE stream when it is true. The model is the
 * body's `model`, the `x-model` header, or the launcher's default; `fallbacks` may name the request's own, and
 * `keep_alive` (Ollama's) how long the model stays resident once idle.
 */
import { Body, Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { TokenEvent } from '@switchyard/batching';
import { ApiError } from '../common/api-error';
import { sendError } from '../common/error.filter';
import { InferenceService, PreparedRequest, timingHeaders } from '../generation/inference.service';
import { generateResponse, streamFinalEvent, streamTokenEvent } from './tgi-format';

interface GenerateBody {
  inputs?: unknown;
  parameters?: unknown;
  model?: unknown;
  fallbacks?: unknown;
  keep_alive?: unknown;
  stream?: unknown;
}

function body(raw: unknown): GenerateBody {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw ApiError.validation('the request body must be a JSON object with `inputs`');
  }
  return raw as GenerateBody;
}

@Controller()
export class GenerateController {
  constructor(private readonly inference: InferenceService) {}

  @Post('generate')
  @HttpCode(200)
  async generate(@Body() raw: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    res.json(await this.runJson(body(raw), req, res, '/generate'));
  }

  @Post('generate_stream')
  async generateStream(@Body() raw: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    await this.runStream(body(raw), req, res, '/generate_stream');
  }

  /** TGI's compat route. */
  @Post()
  async compat(@Body() raw: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const b = body(raw);
    if (b.stream !== undefined && typeof b.stream !== 'boolean')
      throw ApiError.validation('`stream` must be a boolean');
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
    return generateResponse(outcome.final, prepared.inputText, {
      details: prepared.wantDetails,
      returnFullText: prepared.parameters.returnFullText,
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
        streamFinalEvent(lastEvent, outcome.final, prepared.inputText, {
          details: prepared.wantDetails,
          returnFullText: prepared.parameters.returnFullText,
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
