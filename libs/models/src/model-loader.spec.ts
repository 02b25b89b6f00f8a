import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEMO_MODELS, loadGoldens, modelDir } from '../../../test/support/repo';
import { identityModelBytes } from '../../../test/support/onnx-fixture';
import { LoadedModel, loadModel } from './model-loader';
import { ModelError, ModelErrorKind } from './model-error';

/** Plain greedy decoding at batch 1 straight on the forward call: the reference the engine is held to. */
async function greedy(
  model: LoadedModel,
  promptIds: number[],
  maxNewTokens: number,
  stopIds: number[],
): Promise<number[]> {
  const vocab = model.config.vocabSize;
  const ids = [...promptIds];
  let past = null;
  let seq = BigInt64Array.from(promptIds.map(BigInt));
  const out: number[] = [];
  while (out.length < maxNewTokens) {
    const pastLen = ids.length - seq.length;
    const total = ids.length;
    const result = await model.session.forward({
      batchSize: 1,
      seqLen: seq.length,
      pastLen,
      inputIds: seq,
      attentionMask: new BigInt64Array(total).fill(1n),
      positionIds: BigInt64Array.from({ length: seq.length }, (_, i) => BigInt(pastLen + i)),
      past,
    });
    const logits = result.logits!.data as Float32Array;
    const offset = (seq.length - 1) * vocab;
    let best = 0;
    for (let v = 1; v < vocab; v++) if (logits[offset + v] > logits[offset + best]) best = v;
    out.push(best);
    if (stopIds.includes(best)) break;
    ids.push(best);
    past = result.presents;
    seq = BigInt64Array.of(BigInt(best));
  }
  return out;
}

for (const name of DEMO_MODELS) {
  describe(`model runtime on ${name}`, () => {
    const goldens = loadGoldens(name);
    let model: LoadedModel;

    after(async () => model?.release());

    it('loads the config, tokenizer, session and memory estimate', async () => {
      model = await loadModel(modelDir(name), { intraOpThreads: 2, fuseAttention: false });
      const raw = JSON.parse(readFileSync(join(modelDir(name), 'config.json'), 'utf8')) as Record<
        'num_hidden_layers' | 'num_key_value_heads' | 'head_dim' | 'vocab_size' | 'max_position_embeddings',
        number
      >;
      assert.equal(model.config.numLayers, raw.num_hidden_layers);
      assert.equal(model.config.numKvHeads, raw.num_key_value_heads);
      assert.equal(model.config.headDim, raw.head_dim);
      assert.equal(model.config.vocabSize, raw.vocab_size);
      assert.equal(model.config.maxPositions, raw.max_position_embeddings);
      assert.deepEqual(model.config.eosTokenIds, [0, 2]);
      assert.equal(model.session.signature.hasPositionIds, true);
      const dataBytes = readFileSync(join(modelDir(name), 'onnx/model.onnx_data')).length;
      const graphBytes = readFileSync(join(modelDir(name), 'onnx/model.onnx')).length;
      // every initializer, in the data file or inline in the graph
      assert.ok(
        model.memory.weightBytes >= dataBytes && model.memory.weightBytes < dataBytes + graphBytes,
        String(model.memory.weightBytes),
      );
      assert.equal(
        model.memory.kvBytesPerToken,
        2 * raw.num_hidden_layers * raw.num_key_value_heads * raw.head_dim * 4,
      );
    });

    it('tokenizes every golden prompt to its ids', () => {
      for (const c of goldens.cases) assert.deepEqual(model.tokenizer.encode(c.prompt), c.prompt_ids, c.prompt);
    });

    it('reproduces every golden greedy continuation at batch 1', async () => {
      for (const c of goldens.cases) {
        const ids = await greedy(model, c.prompt_ids, goldens.max_new_tokens, goldens.stop_ids);
        assert.deepEqual(ids, c.greedy_ids, c.prompt);
        assert.equal(model.tokenizer.decode(ids), c.greedy_text, c.prompt);
      }
    });

    it('renders the ChatML golden prompts from messages, byte for byte', () => {
      const chats = goldens.cases.filter((c) => c.prompt.startsWith('<|im_start|>user\n'));
      assert.ok(chats.length > 0, 'the goldens include chat prompts');
      for (const c of chats) {
        const content = /^<\|im_start\|>user\n([\s\S]*?)<\|im_end\|>\n<\|im_start\|>assistant\n$/.exec(c.prompt)?.[1];
        assert.ok(content !== undefined, `unexpected chat golden shape: ${c.prompt}`);
        const rendered = model.chatTemplate!.render([{ role: 'user', content }], { addGenerationPrompt: true });
        assert.equal(rendered, c.prompt);
      }
    });
  });
}

describe('broken model directories', () => {
  const root = mkdtempSync(join(tmpdir(), 'switchyard-broken-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  /** A copy of demo-tiny's small files, with its graph linked by copy, to break one piece at a time. */
  function copyOfDemoTiny(name: string): string {
    const src = modelDir('demo-tiny');
    const dir = join(root, name);
    mkdirSync(join(dir, 'onnx'), { recursive: true });
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) {
      copyFileSync(join(src, f), join(dir, f));
    }
    copyFileSync(join(src, 'onnx/model.onnx'), join(dir, 'onnx/model.onnx'));
    copyFileSync(join(src, 'onnx/model.onnx_data'), join(dir, 'onnx/model.onnx_data'));
    return dir;
  }

  async function loadError(dir: string): Promise<ModelError> {
    try {
      const model = await loadModel(dir);
      await model.release();
    } catch (err) {
      assert.ok(err instanceof ModelError, `expected a ModelError, got ${String(err)}`);
      return err;
    }
    assert.fail(`${dir} loaded, but it is broken`);
  }

  it('names the missing tokenizer', async () => {
    const dir = copyOfDemoTiny('no-tokenizer');
    rmSync(join(dir, 'tokenizer.json'));
    const err = await loadError(dir);
    assert.equal(err.kind, ModelErrorKind.MissingFile);
    assert.equal(err.file, join(dir, 'tokenizer.json'));
    assert.match(err.message, /tokenizer\.json: file not found/);
  });

  it('names a config with no layer count', async () => {
    const dir = copyOfDemoTiny('no-layers');
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    delete config.num_hidden_layers;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const err = await loadError(dir);
    assert.equal(err.kind, ModelErrorKind.InvalidConfig);
    assert.equal(err.file, join(dir, 'config.json'));
    assert.match(err.message, /missing "num_hidden_layers"/);
  });

  it('refuses an ONNX graph that is not a decoder', async () => {
    const dir = copyOfDemoTiny('not-a-decoder');
    rmSync(join(dir, 'onnx/model.onnx_data'));
    writeFileSync(join(dir, 'onnx/model.onnx'), identityModelBytes());
    const err = await loadError(dir);
    assert.equal(err.kind, ModelErrorKind.NotADecoder);
    assert.equal(err.file, join(dir, 'onnx/model.onnx'));
    assert.match(err.message, /no "input_ids" input/);
  });

  it('names a missing graph and a missing directory', async () => {
    const dir = copyOfDemoTiny('no-graph');
    rmSync(join(dir, 'onnx'), { recursive: true });
    const noGraph = await loadError(dir);
    assert.equal(noGraph.kind, ModelErrorKind.MissingFile);
    assert.match(noGraph.message, /no ONNX graph/);
    const noDir = await loadError(join(root, 'does-not-exist'));
    assert.match(noDir.message, /model directory not found/);
  });

  it('names a config.json that is not JSON', async () => {
    const dir = copyOfDemoTiny('bad-json');
    writeFileSync(join(dir, 'config.json'), '{"num_hidden_layers": 4,');
    const err = await loadError(dir);
    assert.equal(err.kind, ModelErrorKind.InvalidFile);
    assert.match(err.message, /config\.json: invalid JSON/);
  });
});
