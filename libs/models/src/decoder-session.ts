/**
 * The ONNX Runtime session of a decoder-only language model in the Hugging Face Optimum export layout, and its
 * one forward call. Input and output names are discovered from the graph, so Llama, Qwen2, Mistral and GPT-2
 * exports (with or without `position_ids`, merged decoders with `use_cache_branch`) all load.
 */
import { basename } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelError, ModelErrorKind } from './model-error';
import type { GraphBytes } from './model-graph';
import { halfsToFloats } from './onnx/float16';
import {
  ARGMAX_OUTPUT,
  LOGITS_INDEX_INPUT,
  LOGITS_MAX_OUTPUT,
  LOGSUMEXP_OUTPUT,
  NEW_KV_PREFIX,
  CACHE_LENGTHS_INPUT,
} from './onnx/fuse-attention';

export type ExecutionProvider = 'cpu' | 'cuda';

export interface SessionOptions {
  executionProvider: ExecutionProvider;
  /** Threads for one operator; 0 lets ONNX Runtime choose (all cores). */
  intraOpThreads: number;
  /** Threads across operators; 0 lets ONNX Runtime choose. */
  interOpThreads: number;
  /**
   * Let ONNX Runtime's intra-op threads spin between parallel sections (its default). Fastest when the process has
   * the cores to itself; off where other work shares them (a worker's main thread, the API, Redis), since spinning
   * threads take the CPU that work needs.
   */
  spinning: boolean;
  /**
   * With `spinning`: how long an idle intra-op thread spins before it sleeps, in microseconds (ONNX Runtime's
   * `session.intra_op.spin_duration_us`); null keeps ONNX Runtime's own.
   */
  spinDurationUs: number | null;
}

export const DEFAULT_SESSION_OPTIONS: SessionOptions = {
  executionProvider: 'cpu',
  intraOpThreads: 0,
  interOpThreads: 1,
  spinning: true,
  spinDurationUs: null,
};

/** Element types the KV cache may have; they decide its byte size and the typed array that holds it. */
export type KvDtype = 'float32' | 'float16';

/**
 * How the session takes its KV cache.
 * - `padded`: the export as it is. Rows are left-padded to a common width, an attention mask marks the padding,
 *   and each call returns the whole present (past + new) for every layer.
 * - `ragged`: the rewritten graph (onnx/fuse-attention.ts). The caller owns the cache: row r holds its own tokens
 *   at columns [0, length), right-padded to the buffer's width, keys stored transposed ([batch, kvHeads, headDim,
 *   columns]) and values as usual; `cacheLengths` gives each row's length, and each call returns only the new
 *   tokens' keys and values.
 */
export type CacheLayout = 'padded' | 'ragged';

/** The graph's names, in layer order. */
export interface DecoderSignature {
  layout: CacheLayout;
  numLayers: number;
  hasPositionIds: boolean;
  hasUseCacheBranch: boolean;
  pastKeyNames: string[];
  pastValueNames: string[];
  /** Padded: the presents. Ragged: the new tokens' keys and values. */
  presentKeyNames: string[];
  presentValueNames: string[];
  kvDtype: KvDtype;
  /** Ragged layout: the graph also returns each logits row's maximum, so a call may leave the logits out. */
  hasLogitsMax: boolean;
}

/**
 * One forward pass over `batchSize` rows of `seqLen` new tokens each, after `pastLen` cached columns.
 * Arrays are row-major: `inputIds` and `positionIds` are [batch, seq], `attentionMask` is [batch, past + seq].
 */
export interface ForwardInput {
  batchSize: number;
  seqLen: number;
  pastLen: number;
  inputIds: BigInt64Array;
  positionIds: BigInt64Array;
  /** Padded layout only. */
  attentionMask?: BigInt64Array;
  /** Ragged layout only: each row's cached tokens (its valid columns in `past`). */
  cacheLengths?: BigInt64Array;
  /**
   * Ragged layout only: the positions whose logits are wanted, `logitsPerRow` per row, as flat indices into
   * [batch × seq] (row r's position t is r × seq + t).
   */
  logitsIndex?: BigInt64Array;
  logitsPerRow?: number;
  /**
   * Leave the logits out of the outputs (`logits` is then null), where the signature `hasLogitsMax`: a step whose
   * rows all take the graph's argmax needs only the reductions. The logits are [batch, vocab] floats, copied into a
   * fresh buffer on every call, and at 64 rows that allocation is what drives the garbage collector.
   */
  skipLogits?: boolean;
  /** Per layer, the key then the value tensor ([batch, kvHeads, past, headDim]); null for an empty cache. */
  past: readonly ort.Tensor[] | null;
}

export interface ForwardOutput {
  /** [batch, seq, vocab] (padded), or [batch, logitsPerRow, vocab] (ragged); float32. Null when skipped. */
  logits: ort.Tensor | null;
  /** Ragged layout only: each logits row's log-sum-exp, first argmax and maximum, [batch, logitsPerRow]. */
  logSumExp: Float32Array | null;
  argmax: BigInt64Array | null;
  logitsMax: Float32Array | null;
  /**
   * Per layer, key then value. Padded: the presents ([batch, kvHeads, past + seq, headDim]), ready to be the next
   * step's `past`. Ragged: the new tokens' keys and values ([batch, kvHeads, seq, headDim]), for the caller's cache.
   */
  presents: ort.Tensor[];
}

const PAST_RE = /^past_key_values\.(\d+)\.(key|value)$/;
const PRESENT_RE = /^present(?:_key_values)?\.(\d+)\.(key|value)$/;
const NEW_KV_RE = new RegExp(`^${NEW_KV_PREFIX}\\.(\\d+)\\.(key|value)$`);
const KNOWN_INPUTS = new Set(['input_ids', 'attention_mask', 'position_ids', 'use_cache_branch']);
const RAGGED_INPUTS = new Set(['input_ids', 'position_ids', CACHE_LENGTHS_INPUT, LOGITS_INDEX_INPUT]);

function layerNames(names: readonly string[], re: RegExp): { keys: string[]; values: string[] } {
  const keys: string[] = [];
  const values: string[] = [];
  for (const name of names) {
    const m = re.exec(name);
    if (!m) continue;
    (m[2] === 'key' ? keys : values)[Number(m[1])] = name;
  }
  return { keys, values };
}

/** Checks that a graph's inputs and outputs are a KV-cached decoder's, and returns its names in layer order. */
export function readDecoderSignature(
  file: string,
  inputNames: readonly string[],
  outputNames: readonly string[],
  expectedLayers: number,
  pastType: string | undefined,
): DecoderSignature {
  const fail = (problem: string): never => {
    throw new ModelError(ModelErrorKind.NotADecoder, file, problem);
  };
  const layout: CacheLayout = inputNames.includes(CACHE_LENGTHS_INPUT) ? 'ragged' : 'padded';
  const requiredInputs = layout === 'ragged' ? [...RAGGED_INPUTS] : ['input_ids', 'attention_mask'];
  for (const required of requiredInputs) {
    if (!inputNames.includes(required)) {
      fail(
        `the graph has no "${required}" input (inputs: ${inputNames.join(', ') || 'none'}); it is not a decoder export`,
      );
    }
  }
  if (!outputNames.includes('logits')) fail(`the graph has no "logits" output (outputs: ${outputNames.join(', ')})`);
  const past = layerNames(inputNames, PAST_RE);
  const present = layerNames(outputNames, layout === 'ragged' ? NEW_KV_RE : PRESENT_RE);
  if (past.keys.length === 0) {
    fail(
      'the graph has no past_key_values.N.key/value inputs; export it with a KV cache (task text-generation-with-past)',
    );
  }
  for (let i = 0; i < expectedLayers; i++) {
    if (!past.keys[i] || !past.values[i])
      fail(`missing input past_key_values.${i}.key/value (config.json says ${expectedLayers} layers)`);
    if (!present.keys[i] || !present.values[i])
      fail(`missing output present.${i}.key/value (config.json says ${expectedLayers} layers)`);
  }
  if (past.keys.length !== expectedLayers) {
    fail(`the graph has ${past.keys.length} layers of past_key_values but config.json says ${expectedLayers}`);
  }
  const known = layout === 'ragged' ? RAGGED_INPUTS : KNOWN_INPUTS;
  const unknown = inputNames.filter((n) => !known.has(n) && !PAST_RE.test(n));
  if (unknown.length > 0) fail(`unsupported graph inputs: ${unknown.join(', ')}`);
  let kvDtype: KvDtype = 'float32';
  if (pastType === 'float16') kvDtype = 'float16';
  else if (pastType !== undefined && pastType !== 'float32')
    fail(`past_key_values have type ${pastType}; only float32 and float16 are supported`);
  return {
    layout,
    numLayers: expectedLayers,
    hasPositionIds: inputNames.includes('position_ids'),
    hasUseCacheBranch: inputNames.includes('use_cache_branch'),
    pastKeyNames: past.keys,
    pastValueNames: past.values,
    presentKeyNames: present.keys,
    presentValueNames: present.values,
    kvDtype,
    hasLogitsMax: layout === 'ragged' && outputNames.includes(LOGITS_MAX_OUTPUT),
  };
}

interface InputMetadataEntry {
  name: string;
  isTensor?: boolean;
  type?: string;
}

export class DecoderSession {
  private readonly useCacheTrue?: ort.Tensor;
  private readonly useCacheFalse?: ort.Tensor;
  /** Every output but the logits, for a call that skips them. */
  private readonly withoutLogits: string[];

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly signature: DecoderSignature,
    private readonly kvHeads: number,
    private readonly headDim: number,
  ) {
    this.withoutLogits = session.outputNames.filter((name) => name !== 'logits');
    if (signature.hasUseCacheBranch) {
      this.useCacheTrue = new ort.Tensor('bool', new Uint8Array([1]), [1]);
      this.useCacheFalse = new ort.Tensor('bool', new Uint8Array([0]), [1]);
    }
  }

  /**
   * Creates the session from prepared graph bytes (model-graph.ts), whose external data ONNX Runtime reads from
   * `graph.dataDir`. `file` names the model's graph in errors.
   */
  static async create(
    graph: GraphBytes,
    file: string,
    shape: { numLayers: number; kvHeads: number; headDim: number },
    options: SessionOptions,
    /**
     * Where ONNX Runtime writes the optimised graph and its weights for later loads, and whether with their
     * prepacked forms too.
     */
    saveOptimized?: { file: string; prepacked: boolean },
  ): Promise<DecoderSession> {
    const sessionOptions = sessionOptionsOf(options, 'all', {
      // a graph created from bytes reads its external data from here (ONNX Runtime's
      // kOrtSessionOptionsModelExternalInitializersFileFolderPath)
      model_external_initializers_file_folder_path: graph.dataDir,
      ...(saveOptimized && {
        optimized_model_external_initializers_file_name: `${basename(saveOptimized.file)}_data`,
        optimized_model_external_initializers_min_size_in_bytes: '1024',
        save_external_prepacked_constant_initializers: saveOptimized.prepacked ? '1' : '0',
      }),
    });
    if (saveOptimized) {
      sessionOptions.optimizedModelFilePath = saveOptimized.file;
      // ONNX Runtime warns that a graph optimised at this level suits this machine only: the cache key says so
      sessionOptions.logSeverityLevel = 3;
    }
    return DecoderSession.open(graph.bytes, file, shape, options, sessionOptions);
  }

  /**
   * Creates the session from a graph ONNX Runtime optimised and saved earlier (`create`'s `saveOptimizedTo`): no
   * optimisation runs again, and the prepacked weights are mapped from their file rather than packed anew.
   */
  static async createOptimized(
    graphFile: string,
    file: string,
    shape: { numLayers: number; kvHeads: number; headDim: number },
    options: SessionOptions,
  ): Promise<DecoderSession> {
    return DecoderSession.open(graphFile, file, shape, options, sessionOptionsOf(options, 'disabled', {}));
  }

  private static async open(
    graph: Uint8Array | string,
    file: string,
    shape: { numLayers: number; kvHeads: number; headDim: number },
    options: SessionOptions,
    sessionOptions: ort.InferenceSession.SessionOptions,
  ): Promise<DecoderSession> {
    let session: ort.InferenceSession;
    try {
      session =
        typeof graph === 'string'
          ? await ort.InferenceSession.create(graph, sessionOptions)
          : await ort.InferenceSession.create(graph, sessionOptions);
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      const kind = /protobuf|parse|load model|invalid/i.test(message)
        ? ModelErrorKind.InvalidFile
        : ModelErrorKind.SessionFailed;
      throw new ModelError(kind, file, `ONNX Runtime cannot open it (${options.executionProvider}): ${message}`);
    }
    try {
      const metadata = (session as unknown as { inputMetadata?: readonly InputMetadataEntry[] }).inputMetadata ?? [];
      const pastType = metadata.find((m) => PAST_RE.test(m.name))?.type;
      const signature = readDecoderSignature(file, session.inputNames, session.outputNames, shape.numLayers, pastType);
      return new DecoderSession(session, signature, shape.kvHeads, shape.headDim);
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  /** A zero-length past for the first call of a batch of `batchSize` rows. */
  emptyPast(batchSize: number): ort.Tensor[] {
    const dims = [batchSize, this.kvHeads, 0, this.headDim];
    // The ragged layout caches keys transposed: [batch, kvHeads, headDim, columns].
    const keyDims = this.signature.layout === 'ragged' ? [batchSize, this.kvHeads, this.headDim, 0] : dims;
    const tensors: ort.Tensor[] = [];
    for (let i = 0; i < this.signature.numLayers * 2; i++) {
      const shape = i % 2 === 0 ? keyDims : dims;
      tensors.push(
        this.signature.kvDtype === 'float16'
          ? new ort.Tensor('float16', new Uint16Array(0), shape)
          : new ort.Tensor('float32', new Float32Array(0), shape),
      );
    }
    return tensors;
  }

  async forward(input: ForwardInput): Promise<ForwardOutput> {
    const { batchSize, seqLen, pastLen } = input;
    const sig = this.signature;
    // A fresh feeds object per call: the session may run concurrently (tests, benchmarks).
    const feeds: Record<string, ort.Tensor> = {};
    feeds.input_ids = new ort.Tensor('int64', input.inputIds, [batchSize, seqLen]);
    if (sig.layout === 'ragged') {
      if (!input.cacheLengths) throw new Error('a ragged cache needs cacheLengths');
      feeds[CACHE_LENGTHS_INPUT] = new ort.Tensor('int64', input.cacheLengths, [batchSize]);
      if (!input.logitsIndex || !input.logitsPerRow) throw new Error('a ragged cache needs logitsIndex');
      feeds[LOGITS_INDEX_INPUT] = new ort.Tensor('int64', input.logitsIndex, [batchSize, input.logitsPerRow]);
    } else {
      if (!input.attentionMask) throw new Error('a padded cache needs an attention mask');
      feeds.attention_mask = new ort.Tensor('int64', input.attentionMask, [batchSize, pastLen + seqLen]);
    }
    if (sig.hasPositionIds) feeds.position_ids = new ort.Tensor('int64', input.positionIds, [batchSize, seqLen]);
    if (sig.hasUseCacheBranch) feeds.use_cache_branch = pastLen > 0 ? this.useCacheTrue! : this.useCacheFalse!;
    const past = input.past ?? this.emptyPast(batchSize);
    for (let i = 0; i < sig.numLayers; i++) {
      feeds[sig.pastKeyNames[i]] = past[2 * i];
      feeds[sig.pastValueNames[i]] = past[2 * i + 1];
    }
    const skipLogits = input.skipLogits === true && sig.hasLogitsMax;
    const out = skipLogits ? await this.session.run(feeds, this.withoutLogits) : await this.session.run(feeds);
    const presents = new Array<ort.Tensor>(sig.numLayers * 2);
    for (let i = 0; i < sig.numLayers; i++) {
      presents[2 * i] = out[sig.presentKeyNames[i]];
      presents[2 * i + 1] = out[sig.presentValueNames[i]];
    }
    let logits = skipLogits ? null : out.logits;
    if (logits && logits.type === 'float16') {
      // an fp16 export served as it is: the sampler reads float32 (the rewritten graph casts in the graph)
      logits = new ort.Tensor('float32', halfsToFloats(logits.data as Uint16Array), logits.dims);
    } else if (logits && logits.type !== 'float32') {
      throw new ModelError(
        ModelErrorKind.NotADecoder,
        'logits',
        `logits have type ${logits.type}; only float32 and float16 logits are supported`,
      );
    }
    const ragged = sig.layout === 'ragged';
    return {
      logits,
      presents,
      logSumExp: ragged ? (out[LOGSUMEXP_OUTPUT].data as Float32Array) : null,
      argmax: ragged ? (out[ARGMAX_OUTPUT].data as BigInt64Array) : null,
      logitsMax: sig.hasLogitsMax ? (out[LOGITS_MAX_OUTPUT].data as Float32Array) : null,
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function sessionOptionsOf(
  options: SessionOptions,
  level: 'all' | 'disabled',
  session: Record<string, string | undefined>,
): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: options.executionProvider === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    intraOpNumThreads: options.intraOpThreads,
    interOpNumThreads: options.interOpThreads,
    graphOptimizationLevel: level,
    extra: { session: { intra_op: intraOpSpinEntries(options), ...session } },
  };
}

/** ONNX Runtime's `session.intra_op.*` config entries for the spinning options. */
function intraOpSpinEntries(options: SessionOptions): Record<string, string> {
  if (!options.spinning) return { allow_spinning: '0' };
  return options.spinDurationUs === null ? {} : { spin_duration_us: String(options.spinDurationUs) };
}
