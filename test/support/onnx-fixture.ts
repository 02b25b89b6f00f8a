/**
 * Writes a tiny valid ONNX model (one Identity node) that is not a decoder, for the "wrong graph" tests. The
 * protobuf is encoded by hand: the handful of ModelProto fields it needs do not warrant a protobuf library.
 */
function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function field(num: number, payload: number[] | string): number[] {
  const bytes = typeof payload === 'string' ? [...Buffer.from(payload, 'utf8')] : payload;
  return [...varint((num << 3) | 2), ...varint(bytes.length), ...bytes];
}

function intField(num: number, value: number): number[] {
  return [...varint(num << 3), ...varint(value)];
}

/** ValueInfoProto for a float tensor of shape [1]. */
function valueInfo(name: string): number[] {
  const dim = field(1, intField(1, 1)); // TensorShapeProto.dim { dim_value: 1 }
  const tensorType = [...intField(1, 1), ...field(2, dim)]; // elem_type FLOAT, shape
  return [...field(1, name), ...field(2, field(1, tensorType))];
}

export function identityModelBytes(): Buffer {
  const node = [...field(1, 'x'), ...field(2, 'y'), ...field(3, 'identity'), ...field(4, 'Identity')];
  const graph = [
    ...field(1, node),
    ...field(2, 'not-a-decoder'),
    ...field(11, valueInfo('x')),
    ...field(12, valueInfo('y')),
  ];
  const opset = [...field(1, ''), ...intField(2, 17)];
  return Buffer.from([...intField(1, 8), ...field(8, opset), ...field(7, graph)]);
}
