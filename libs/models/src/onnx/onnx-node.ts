/**
 * One NodeProto of an ONNX graph, decoded once for a rewrite's lookups, and the AttributeProto fields a rewrite
 * builds. Field numbers are those of onnx.proto; fields this code does not touch are re-encoded byte for byte.
 */
import {
  asMessage,
  bytesField,
  Field,
  first,
  firstString,
  Message,
  messageField,
  packedVarints,
  strings,
  varintField,
  WireType,
} from './protobuf';

// NodeProto
const NODE_INPUT = 1;
const NODE_OUTPUT = 2;
const NODE_NAME = 3;
const NODE_OP = 4;
const NODE_ATTRIBUTE = 5;
const NODE_DOMAIN = 7;
// AttributeProto
const ATTR_NAME = 1;
const ATTR_I = 3;
const ATTR_T = 5;
const ATTR_INTS = 8;
const ATTR_TYPE = 20;
const ATTR_TYPE_INT = 2;
const ATTR_TYPE_TENSOR = 4;
const ATTR_TYPE_INTS = 7;

/** The domain of ONNX Runtime's contrib operators (MatMulNBits, ...). */
export const MS_DOMAIN = 'com.microsoft';

export class OnnxNode {
  // A node's type and tensor names are decoded once, for the many lookups of a rewrite; a node is never changed
  // in place (a rewrite builds a new one).
  readonly opType: string;
  readonly domain: string;
  readonly inputs: string[];
  readonly outputs: string[];

  constructor(readonly fields: Message) {
    this.opType = firstString(fields, NODE_OP) ?? '';
    this.domain = firstString(fields, NODE_DOMAIN) ?? '';
    this.inputs = strings(fields, NODE_INPUT);
    this.outputs = strings(fields, NODE_OUTPUT);
  }

  get name(): string {
    return firstString(this.fields, NODE_NAME) ?? '';
  }

  attribute(name: string): Message | undefined {
    for (const f of this.fields) {
      if (f.no !== NODE_ATTRIBUTE) continue;
      const attr = asMessage(f);
      if (firstString(attr, ATTR_NAME) === name) return attr;
    }
    return undefined;
  }

  intsAttribute(name: string): number[] | undefined {
    const attr = this.attribute(name);
    if (!attr) return undefined;
    const out: number[] = [];
    for (const f of attr) {
      if (f.no !== ATTR_INTS) continue;
      if (f.wt === WireType.Varint) out.push(Number(BigInt.asIntN(64, f.value as bigint)));
      else for (const v of packedVarints(f.value as Uint8Array)) out.push(Number(BigInt.asIntN(64, v)));
    }
    return out;
  }

  intAttribute(name: string): number | undefined {
    const attr = this.attribute(name);
    const f = attr && first(attr, ATTR_I);
    return f ? Number(BigInt.asIntN(64, f.value as bigint)) : undefined;
  }

  /** A tensor-valued attribute (a Constant's `value`), as a TensorProto message. */
  tensorAttribute(name: string): Message | undefined {
    const attr = this.attribute(name);
    const f = attr && first(attr, ATTR_T);
    return f ? asMessage(f) : undefined;
  }

  static make(
    op: string,
    inputs: string[],
    outputs: string[],
    name: string,
    attributes: Field[] = [],
    domain = '',
  ): OnnxNode {
    return new OnnxNode([
      ...inputs.map((i) => bytesField(NODE_INPUT, i)),
      ...outputs.map((o) => bytesField(NODE_OUTPUT, o)),
      bytesField(NODE_NAME, name),
      bytesField(NODE_OP, op),
      ...attributes,
      ...(domain ? [bytesField(NODE_DOMAIN, domain)] : []),
    ]);
  }

  /** The same node (type, attributes, domain) reading and writing other tensors. */
  rewired(inputs: string[], outputs: string[]): OnnxNode {
    const rest = this.fields.filter((f) => f.no !== NODE_INPUT && f.no !== NODE_OUTPUT);
    return new OnnxNode([
      ...inputs.map((i) => bytesField(NODE_INPUT, i)),
      ...outputs.map((o) => bytesField(NODE_OUTPUT, o)),
      ...rest,
    ]);
  }

  /** The same node with attribute `name` set to `attribute` (replaced, or added). */
  withAttribute(name: string, attribute: Field): OnnxNode {
    const kept = this.fields.filter((f) => f.no !== NODE_ATTRIBUTE || firstString(asMessage(f), ATTR_NAME) !== name);
    return new OnnxNode([...kept, attribute]);
  }

  withIntAttribute(name: string, value: number): OnnxNode {
    return this.withAttribute(name, intAttr(name, value));
  }
}

export function intAttr(name: string, value: number): Field {
  return messageField(NODE_ATTRIBUTE, [
    bytesField(ATTR_NAME, name),
    varintField(ATTR_I, value),
    varintField(ATTR_TYPE, ATTR_TYPE_INT),
  ]);
}

export function intsAttr(name: string, values: number[]): Field {
  return messageField(NODE_ATTRIBUTE, [
    bytesField(ATTR_NAME, name),
    ...values.map((v) => varintField(ATTR_INTS, v)),
    varintField(ATTR_TYPE, ATTR_TYPE_INTS),
  ]);
}

export function tensorAttr(name: string, tensor: Message): Field {
  return messageField(NODE_ATTRIBUTE, [
    bytesField(ATTR_NAME, name),
    messageField(ATTR_T, tensor),
    varintField(ATTR_TYPE, ATTR_TYPE_TENSOR),
  ]);
}
