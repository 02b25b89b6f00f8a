/**
 * OpenAI's generation routes: `POST /v1/chat/completions` (the prompt is the model's chat template applied to
 * `messages`) and `POST /v1/completions`. Both stream as OpenAI does (chunks, then `data: [DONE]`), report
 * `usage`, honour `stream_options.include_usage`, and name the served model.
 */
import { Body, Controller, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import type { Request, Response } from 'express';
import type { z } from 'zod';
import type { TokenEvent } from '@switchyard/batching';
import { ChatTemplateError } from '@switchyard/models';
import { ApiError } from '../common/api-error';
import { sendError } from '../common/error.filter';
import { ApiRoute, ApiRouteSpec, TIMING_HEADERS } from '../docs/api-route';
import { GENERATION_ERRORS } from '../docs/error-responses';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { InferenceService, PreparedRequest, Served, timingHeaders } from '../generation/inference.service';
import type { ClientResponse } from '../generation/stream-relay';
import type { ResolvedModel } from '../registry/model-registry.service';
import { answerChoice, bestOf, Kind } from './openai-answer';
import { checkGrammarOffThread } from '../common/grammar';
import { chatPattern, completionPattern, PlannedGrammar, toolUse } from './openai-grammar';
import { includeUsage, requestedLogprobs, toTgiParameters, usage } from './openai-params';
import { ChunkStream } from './openai-stream';
import { templateMessages } from './tool-calls';
import {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  Completion,
  CompletionChunk,
  CompletionRequest,
} from './openai.schemas';

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

/** What a route asks `respond` to run. */
interface Plan {
  kind: Kind;
  body: Body;
  /** Alternatives per token (`requestedLogprobs`), or null for no logprobs. */
  logprobs: number | null;
  /** TGI parameters, before each generation's own seed. */
  parameters: Record<string, unknown>;
  /** The engine's regex for every generation, or null. */
  grammar: PlannedGrammar | null;
  /** Whether the answer may be tool calls. */
  toolCalls: boolean;
  /** The generations to run, and the choices they answer with (`best_of` ranks the first among the second). */
  samples: number;
  choices: number;
  /** The prompt for a candidate model (chat: its template over the messages); throws ApiError. */
  prompt(model: ResolvedModel): string;
}

/** Generation `i`'s parameters: with a seed, `seed + i`, so that every choice is reproducible and they differ. */
function sampleParameters(parameters: Record<string, unknown>, i: number): Record<string, unknown> {
  if (i === 0 || typeof parameters.seed !== 'number') return parameters;
  return { ...parameters, seed: (parameters.seed + i) % Number.MAX_SAFE_INTEGER };
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
        '`response_format` and tool calls constrain the decoding (compact JSON). ' +
        STREAM_NOTE,
      operationId: 'createChatCompletion',
      body: ChatCompletionRequest,
      completion: ChatCompletion,
      chunk: ChatCompletionChunk,
    }),
  )
  async chat(@Body() raw: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const body = this.inference.parse(req, '/v1/chat/completions', ChatCompletionRequest, raw);
    const use = toolUse(body);
    const grammar = chatPattern(body, use);
    const n = body.n ?? 1;
    await this.respond(
      {
        ...this.parameters('chat', body),
        kind: 'chat',
        body,
        grammar,
        toolCalls: use !== null,
        samples: n,
        choices: n,
        prompt: (model) => {
          const template = model.description.chatTemplate;
          if (!template) throw ApiError.validation(`model ${model.spec.id} has no chat template: use /v1/completions`);
          const { messages, extra } = templateMessages(template, body.messages, use);
          try {
            return template.render(messages, { addGenerationPrompt: true, extra });
          } catch (err) {
            if (err instanceof ChatTemplateError) throw ApiError.validation(err.message);
            throw err;
          }
        },
      },
      req,
      res,
    );
  }

  @Post('completions')
  @HttpCode(200)
  @ApiRoute(
    completionRoute({
      summary: 'Text completion',
      description:
        "OpenAI's (legacy) completions: the prompt as it is. `max_tokens` defaults to 16. TGI's `grammar` " +
        'constrains the decoding. ' +
        STREAM_NOTE,
      operationId: 'createCompletion',
      body: CompletionRequest,
      completion: Completion,
      chunk: CompletionChunk,
    }),
  )
  async completions(@Body() raw: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const body = this.inference.parse(req, '/v1/completions', CompletionRequest, raw);
    const grammar = completionPattern(body);
    const n = body.n ?? 1;
    const bestOf = body.best_of ?? n;
    if (bestOf > 1 && bestOf > this.config.maxBestOf && bestOf > n) {
      throw ApiError.validation(`\`best_of\` must be at most ${this.config.maxBestOf} on this server (--max-best-of)`);
    }
    const plan = { ...this.parameters('completion', body), kind: 'completion' as const };
    if (body.echo === true) {
      plan.parameters.return_full_text = true;
      if (plan.logprobs !== null) plan.parameters.decoder_input_details = true;
    }
    await this.respond(
      { ...plan, body, grammar, toolCalls: false, samples: bestOf, choices: n, prompt: () => body.prompt },
      req,
      res,
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
   * Runs the plan's generations side by side, each its own job (its id: the request's, then `.1`, `.2`, ...) and
   * usage row, and answers as OpenAI does: JSON, or chunks. A generation that fails fails the answer and cancels
   * the others.
   */
  private async respond(plan: Plan, req: Request, res: Response): Promise<void> {
    const requestId = this.inference.requestId(req);
    const stream = plan.body.stream === true;
    const route = plan.kind === 'chat' ? '/v1/chat/completions' : '/v1/completions';
    const client = new SharedClient(res, plan.samples);
    const serve = (i: number, onToken?: (event: TokenEvent, prepared: PreparedRequest) => void) => {
      const id = i === 0 ? requestId : `${requestId}.${i}`;
      const served = this.inference.serve(req, client, {
        route,
        model: plan.body.model,
        fallbacks: plan.body.fallbacks,
        keepAlive: plan.body.keep_alive,
        stream,
        requestId: id,
        build: async (model) => {
          const prompt = plan.prompt(model);
          const prepared = await this.inference.prepare(req, model, prompt, sampleParameters(plan.parameters, i), {
            stream,
          });
          prepared.requestId = id;
          if (plan.grammar) {
            await checkGrammarOffThread(plan.grammar.pattern, plan.grammar.field);
            prepared.parameters.grammar = plan.grammar.pattern;
          }
          return prepared;
        },
        onToken,
      });
      return served.catch((err: unknown) => {
        client.fail();
        throw err;
      });
    };
    const header = {
      id: `${plan.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${requestId}`,
      created: Math.floor(Date.now() / 1000),
      fingerprint: `switchyard-${this.config.version}`,
    };
    if (stream) await this.stream(plan, header, serve, req, res);
    else await this.answer(plan, header, serve, res);
  }

  private async answer(plan: Plan, header: Header, serve: ServeSample, res: Response): Promise<void> {
    const served = await Promise.all(Array.from({ length: plan.samples }, (_, i) => serve(i)));
    const samples = served.map((s) => ({ final: s.outcome.final, echo: s.prepared.parameters.returnFullText }));
    const chosen = plan.samples > plan.choices ? bestOf(samples, plan.choices) : samples;
    const [first] = served;
    res.set(timingHeaders(first));
    res.json({
      id: header.id,
      object: plan.kind === 'chat' ? 'chat.completion' : 'text_completion',
      created: header.created,
      model: first.prepared.model.spec.id,
      system_fingerprint: header.fingerprint,
      choices: chosen.map((sample, index) => answerChoice(sample, index, plan)),
      usage: usage(first.outcome.final.inputTokens, completionTokens(served)),
    });
  }

  /**
   * SSE: headers go out with the first token of any choice, so an error before it is still a plain HTTP answer;
   * after it, an error is the stream's last event.
   */
  private async stream(plan: Plan, header: Header, serve: ServeSample, req: Request, res: Response): Promise<void> {
    const chunks = new ChunkStream({
      ...header,
      kind: plan.kind,
      choices: plan.choices,
      logprobs: plan.logprobs,
      toolCalls: plan.toolCalls,
      withUsage: includeUsage(plan.body),
    });
    // a failed choice ends the response while the others may still be generating
    const write = (text: string) => {
      if (text !== '' && !res.writableEnded) res.write(text);
    };
    const open = (prepared: PreparedRequest) => {
      if (res.headersSent) return;
      res.status(200).set({
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
        'x-served-model': prepared.model.spec.id,
      });
      write(chunks.open(prepared.model.spec.id, prepared.parameters.returnFullText ? prepared.inputText : null));
    };
    try {
      const served = await Promise.all(
        Array.from({ length: plan.samples }, (_, i) =>
          serve(i, (event, prepared) => {
            open(prepared);
            write(chunks.token(i, event));
          }).then((s) => {
            open(s.prepared);
            write(chunks.finish(i, s.outcome.final, s.outcome.lastToken));
            return s;
          }),
        ),
      );
      write(chunks.close(served[0].outcome.final.inputTokens, completionTokens(served)));
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

/**
 * The response as each of a request's generations follows it: the client's disconnect cancels them all, and so
 * does one generation's failure, since the answer has failed.
 */
class SharedClient extends EventEmitter implements ClientResponse {
  private failed = false;

  constructor(
    private readonly res: Response,
    generations: number,
  ) {
    super();
    this.setMaxListeners(generations + 1);
    res.once('close', () => this.emit('close'));
  }

  get writableFinished(): boolean {
    return !this.failed && this.res.writableFinished;
  }

  fail(): void {
    if (this.failed) return;
    this.failed = true;
    this.emit('close');
  }
}

type Header = { id: string; created: number; fingerprint: string };
type ServeSample = (i: number, onToken?: (event: TokenEvent, prepared: PreparedRequest) => void) => Promise<Served>;

/** Every generation's tokens: what `usage` counts, `best_of`'s unchosen ones included. */
function completionTokens(served: readonly Served[]): number {
  return served.reduce((sum, s) => sum + s.outcome.final.details.generatedTokens, 0);
}
