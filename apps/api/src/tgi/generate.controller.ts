/**
 * TGI's generation routes: `POST /generate` (JSON), `POST /generate_stream` (SSE) and `POST /`, which answers
 * like TGI's compat route: an array when `stream` is false, an SSE stream when it is true. The model is the
 * body's `model`, the `x-model` header, or the launcher's default.
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
    const prepared = await this.prepare(raw, req, false);
    const result = await this.runJson(prepared, res);
    res.json(result);
  }

  @Post('generate_stream')
  async generateStream(@Body() raw: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const prepared = await this.prepare(raw, req, true);
    await this.runStream(prepared, req, res);
  }

  /** TGI's compat route. */
  @Post()
  async compat(@Body() raw: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const { stream } = body(raw);
    if (stream !== undefined && typeof stream !== 'boolean') throw ApiError.validation('`stream` must be a boolean');
    const prepared = await this.prepare(raw, req, stream === true);
    if (stream === true) {
      await this.runStream(prepared, req, res);
      return;
    }
    const result = await this.runJson(prepared, res);
    res.status(200).json([result]);
  }

  private async prepare(raw: unknown, req: Request, stream: boolean): Promise<PreparedRequest> {
    const { inputs, parameters, model } = body(raw);
    const resolved = await this.inference.model(model ?? req.header('x-model'));
    return this.inference.prepare(req, resolved, inputs, parameters, { stream });
  }

  private async runJson(prepared: PreparedRequest, res: Response) {
    const { outcome, timings } = await this.inference.execute(prepared, res);
    res.set(timingHeaders(prepared, outcome, timings));
    const { parameters } = prepared;
    return generateResponse(outcome.final, prepared.inputText, {
      details: prepared.wantDetails,
      returnFullText: parameters.returnFullText,
      topNTokens: parameters.topNTokens,
    });
  }

  /**
   * SSE: headers go out with the first token, so an error before it (validation, placement, overload) is
   * still a plain HTTP error; after it, an error is a `data:{"error",...}` event.
   */
  private async runStream(prepared: PreparedRequest, req: Request, res: Response): Promise<void> {
    const open = () => {
      if (res.headersSent) return;
      res.status(200).set({
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
        'x-served-model': prepared.model.spec.id,
        'x-compute-type': prepared.computeType,
      });
      res.flushHeaders();
    };
    const onToken = (event: TokenEvent) => {
      open();
      res.write(streamTokenEvent(event));
    };
    try {
      const { outcome } = await this.inference.execute(prepared, res, { onToken });
      open();
      const last = outcome.lastToken ?? outcome.final.details.tokens.at(-1);
      const lastEvent: TokenEvent =
        outcome.lastToken ??
        ({
          type: 'token',
          index: Math.max(0, outcome.final.details.generatedTokens - 1),
          token: last!,
          topTokens: [],
        } as TokenEvent);
      res.write(
        streamFinalEvent(lastEvent, outcome.final, prepared.inputText, {
          details: prepared.wantDetails,
          returnFullText: prepared.parameters.returnFullText,
        }),
      );
      res.end();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.errorType === 'cancelled') return; // nobody is listening
      sendError(req, res, err);
    }
  }
}
