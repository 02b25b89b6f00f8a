/**
 * Converts a float32 graph to float16, as an fp16 export of a Hugging Face model is: weights, activations, the KV
 * cache and the logits in float16, except the rotary angles, which are computed in float32 from the positions and
 * cast after their Cos and Sin (as `LlamaRotaryEmbedding` does: float16 cannot hold position × frequency at long
 * contexts). Float constants are clamped to float16's range, so a float32 mask's `finfo.min` becomes -65504 rather
 * than -inf (a row that masks everything then stays finite, as it does in an fp16 export).
 */
import { floatsToHalfs } from './float16';
import { OnnxModel } from './onnx-model';
import { intAttr, OnnxNode, tensorAttr } from './onnx-node';
import { floatsView, OnnxTensor, TensorType } from './onnx-tensor';
import { bytesField, first, firstString, Message, varintField } from './protobuf';

const HALF_MAX = 65504;
// TensorProto fields, for Constant values
const TENSOR_DIMS = 1;
const TENSOR_TYPE = 2;
const TENSOR_NAME = 8;
const TENSOR_RAW = 9;

/** Output element types of the operators an export uses, where they are not the first input's. */
function outputType(node: OnnxNode, types: Map<string, number>): number | undefined {
  const input = (i: number) => types.get(node.inputs[i]);
  switch (node.opType) {
    case 'Cast':
      return node.intAttribute('to');
    case 'Shape':
    case 'Size':
    case 'ArgMax':
    case 'ArgMin':
    case 'NonZero':
      return TensorType.Int64;
    case 'Equal':
    case 'Less':
    case 'LessOrEqual':
    case 'Greater':
    case 'GreaterOrEqual':
    case 'And':
    case 'Or':
    case 'Not':
    case 'Xor':
    case 'IsNaN':
    case 'IsInf':
      return TensorType.Bool;
    case 'Where':
      return input(1);
    case 'Constant': {
      const t = node.tensorAttribute('value');
      return t ? Number(first(t, TENSOR_TYPE)?.value ?? 0n) : undefined;
    }
    case 'ConstantOfShape': {
      const t = node.tensorAttribute('value');
      return t ? Number(first(t, TENSOR_TYPE)?.value ?? 0n) : TensorType.Float;
    }
    default:
      return input(0);
  }
}

/** A Constant's or ConstantOfShape's float32 value as float16, clamped to its range. */
function halfTensor(tensor: Message, raw: Float32Array): Message {
  const clamped = raw.map((v) => (Number.isFinite(v) ? Math.max(-HALF_MAX, Math.min(HALF_MAX, v)) : v));
  const halfs = floatsToHalfs(Float32Array.from(clamped));
  const dims = tensor.filter((f) => f.no === TENSOR_DIMS);
  const name = first(tensor, TENSOR_NAME);
  return [
    ...dims,
    varintField(TENSOR_TYPE, TensorType.Float16),
    ...(name ? [bytesField(TENSOR_NAME, firstString(tensor, TENSOR_NAME)!)] : []),
    bytesField(TENSOR_RAW, new Uint8Array(halfs.buffer)),
  ];
}

/** Converts `source` (unchanged) to float16; weights are converted when the model is saved. */
export function toFloat16(source: OnnxModel): OnnxModel {
  const model = source.clone();
  const types = new Map<string, number>();
  for (const i of model.inputs) types.set(i.name, i.type);
  for (const t of model.initializers.values()) types.set(t.name, t.type);
  for (const node of model.nodes) {
    const type = outputType(node, types);
    if (type !== undefined) for (const o of node.outputs) types.set(o, type);
  }
  const isFloat = (name: string) => types.get(name) === TensorType.Float;

  // The rotary angles: every float tensor the Cos and Sin nodes are computed from stays float32.
  const producer = new Map<string, OnnxNode>();
  for (const node of model.nodes) for (const o of node.outputs) producer.set(o, node);
  const keep = new Set<string>();
  const stack: string[] = [];
  for (const node of model.nodes) {
    if (node.opType !== 'Cos' && node.opType !== 'Sin') continue;
    for (const o of node.outputs) keep.add(o);
    stack.push(...node.inputs);
  }
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (keep.has(name) || !isFloat(name)) continue;
    keep.add(name);
    const p = producer.get(name);
    if (p) stack.push(...p.inputs);
  }

  const converted = (name: string) => isFloat(name) && !keep.has(name);
  // Initializers read both inside and outside the float32 part get a float16 copy for the outside.
  const halfName = (name: string) => `${name}_fp16`;
  const readers = new Map<string, { kept: boolean; converted: boolean }>();
  for (const node of model.nodes) {
    const inKept = node.outputs.some((o) => keep.has(o));
    for (const i of node.inputs) {
      if (!model.initializers.has(i) || !isFloat(i)) continue;
      const r = readers.get(i) ?? { kept: false, converted: false };
      if (inKept) r.kept = true;
      else r.converted = true;
      readers.set(i, r);
    }
  }
  for (const [name, r] of readers) {
    if (!r.converted) continue;
    const t = model.initializers.get(name)!;
    const half = OnnxTensor.computed(r.kept ? halfName(name) : name, TensorType.Float16, t.dims, t.elements * 2, () => {
      const floats = Float32Array.from(floatsView(t.read()));
      for (let i = 0; i < floats.length; i++) floats[i] = Math.max(-HALF_MAX, Math.min(HALF_MAX, floats[i]));
      return new Uint8Array(floatsToHalfs(floats).buffer);
    });
    model.initializers.set(half.name, half);
  }
  const initializerFor = (name: string, kept: boolean) =>
    !kept && readers.get(name)?.kept && readers.get(name)?.converted ? halfName(name) : name;

  const nodes: OnnxNode[] = [];
  let casts = 0;
  for (const node of model.nodes) {
    const inKept = node.outputs.some((o) => keep.has(o));
    // a float32 (kept) tensor read by a float16 node is cast at the boundary: the rotary cos and sin
    const inputs = node.inputs.map((i) => {
      if (model.initializers.has(i)) return initializerFor(i, inKept);
      if (!inKept && keep.has(i)) {
        const cast = `${i}_to_fp16`;
        if (!nodes.some((n) => n.outputs[0] === cast)) {
          nodes.push(
            OnnxNode.make('Cast', [i], [cast], `/to_float16/Cast_${casts++}`, [intAttr('to', TensorType.Float16)]),
          );
        }
        return cast;
      }
      return i;
    });
    let out = inputs.some((v, k) => v !== node.inputs[k]) ? node.rewired(inputs, node.outputs) : node;
    if (!inKept) {
      if (node.opType === 'Cast' && node.intAttribute('to') === TensorType.Float)
        out = out.withIntAttribute('to', TensorType.Float16);
      if ((node.opType === 'Constant' || node.opType === 'ConstantOfShape') && node.outputs.some(converted)) {
        // ConstantOfShape's default value is a float32 zero
        const value = node.tensorAttribute('value') ?? [varintField(TENSOR_DIMS, 1)];
        const raw = first(value, TENSOR_RAW)?.value as Uint8Array | undefined;
        const floats = raw ? floatsView(raw) : floatsFromFields(value);
        out = out.withAttribute(
          'value',
          tensorAttr('value', halfTensor(value, floats.length > 0 ? floats : Float32Array.of(0))),
        );
      }
    }
    nodes.push(out);
  }
  model.nodes = nodes;
  model.inputs = model.inputs.map((i) => (i.type === TensorType.Float ? { ...i, type: TensorType.Float16 } : i));
  model.outputs = model.outputs.map((o) => (o.type === TensorType.Float ? { ...o, type: TensorType.Float16 } : o));
  model.valueInfo = [];
  return model;
}

function floatsFromFields(tensor: Message): Float32Array {
  const out: number[] = [];
  for (const f of tensor) {
    if (f.no !== 4) continue; // float_data, packed
    const bytes = f.value as Uint8Array;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let p = 0; p + 4 <= bytes.length; p += 4) out.push(view.getFloat32(p, true));
  }
  return Float32Array.from(out);
}
