/**
 * An ONNX model as the rewrites see it: the graph's nodes, initializers, inputs and outputs, decoded from the
 * protobuf without reading any weights. A weight's bytes are read only when a rewrite asks for them, and a saved
 * model either keeps each weight where it was (inline, or in the source's external data file) or streams it into
 * a new external data file. So a 30 GiB model is rewritten in about the memory of its largest tensor, and a model
 * over protobuf's 2 GiB limit never has to fit in one message.
 *
 * Field numbers are those of onnx.proto; fields this code does not touch are re-encoded byte for byte. The nodes,
 * tensors and value infos are decoded in onnx-node.ts, onnx-tensor.ts and value-info.ts.
 */
import { closeSync, openSync } from 'node:fs';
import { DataLocation, writeAll, writeExternalData } from './external-data';
import { OnnxNode } from './onnx-node';
import { OnnxTensor, tensorFromProto } from './onnx-tensor';
import {
  asMessage,
  bytesField,
  decode,
  encode,
  first,
  firstString,
  Message,
  messageField,
  varintField,
} from './protobuf';
import { readValueInfo, ValueInfo, valueInfoMessage } from './value-info';

// ModelProto
const MODEL_GRAPH = 7;
const MODEL_OPSET = 8;
// GraphProto
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_INPUT = 11;
const GRAPH_OUTPUT = 12;
const GRAPH_VALUE_INFO = 13;

/** Where `OnnxModel.save` writes the graph and the data it moves out of the protobuf. */
export interface SaveTarget {
  /** The graph file to write. */
  graphFile: string;
  /**
   * The external data file (in the graph's directory) for every tensor that is not kept where it is; null keeps
   * each tensor where it was, and writes computed tensors inline.
   */
  dataFile: string | null;
  /**
   * Which tensors go into `dataFile`. Default: the computed ones, and every external one (an ONNX Runtime session
   * resolves all external data against one directory, so a graph cannot point into two).
   */
  moveToData?: (tensor: OnnxTensor) => boolean;
  /** Called after each tensor is written to the data file, for progress on long saves. */
  onTensor?: (written: number, total: number) => void;
}

export class OnnxModel {
  private constructor(
    /** The ModelProto's fields other than the graph. */
    private readonly modelFields: Message,
    /** The GraphProto's fields this code does not rewrite (its name, doc string, ...). */
    private readonly graphFields: Message,
    public nodes: OnnxNode[],
    public initializers: Map<string, OnnxTensor>,
    public inputs: ValueInfo[],
    public outputs: ValueInfo[],
    /** The graph's value_info, kept verbatim where the rewrite leaves a tensor alone. */
    public valueInfo: Message[],
    /** The directory external data locations are relative to. */
    readonly dir: string,
  ) {}

  static read(graphFile: string, bytes: Uint8Array, dir: string): OnnxModel {
    const model = decode(bytes);
    const graphField = first(model, MODEL_GRAPH);
    if (!graphField) throw new Error(`${graphFile}: no graph`);
    const graph = asMessage(graphField);
    const initializers = new Map<string, OnnxTensor>();
    for (const f of graph) {
      if (f.no !== GRAPH_INITIALIZER) continue;
      const tensor = tensorFromProto(asMessage(f), dir);
      initializers.set(tensor.name, tensor);
    }
    return new OnnxModel(
      model.filter((f) => f.no !== MODEL_GRAPH),
      graph.filter((f) => ![GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_INPUT, GRAPH_OUTPUT, GRAPH_VALUE_INFO].includes(f.no)),
      graph.filter((f) => f.no === GRAPH_NODE).map((f) => new OnnxNode(asMessage(f))),
      initializers,
      graph.filter((f) => f.no === GRAPH_INPUT).map((f) => readValueInfo(asMessage(f))),
      graph.filter((f) => f.no === GRAPH_OUTPUT).map((f) => readValueInfo(asMessage(f))),
      graph.filter((f) => f.no === GRAPH_VALUE_INFO).map((f) => asMessage(f)),
      dir,
    );
  }

  /** A new model of one graph (for tests and tools), importing `opsets` (domain → version). */
  static create(graph: {
    nodes: OnnxNode[];
    initializers: OnnxTensor[];
    inputs: ValueInfo[];
    outputs: ValueInfo[];
    opsets: Record<string, number>;
    dir?: string;
  }): OnnxModel {
    const IR_VERSION = 8;
    const modelFields: Message = [varintField(1, IR_VERSION)];
    for (const [domain, version] of Object.entries(graph.opsets)) {
      modelFields.push(messageField(MODEL_OPSET, [bytesField(1, domain), varintField(2, version)]));
    }
    return new OnnxModel(
      modelFields,
      [bytesField(2, 'graph')],
      graph.nodes,
      new Map(graph.initializers.map((t) => [t.name, t])),
      graph.inputs,
      graph.outputs,
      [],
      graph.dir ?? '.',
    );
  }

  /** A copy whose node, initializer and value lists a rewrite may change; the tensors themselves are shared. */
  clone(): OnnxModel {
    return new OnnxModel(
      this.modelFields,
      this.graphFields,
      [...this.nodes],
      new Map(this.initializers),
      [...this.inputs],
      [...this.outputs],
      [...this.valueInfo],
      this.dir,
    );
  }

  /** The version of an operator set the model imports (`''` is the default ONNX domain); 0 when absent. */
  opsetVersion(domain = ''): number {
    for (const f of this.modelFields) {
      if (f.no !== MODEL_OPSET) continue;
      const opset = asMessage(f);
      if ((firstString(opset, 1) ?? '') === domain) return Number(first(opset, 2)?.value ?? 0n);
    }
    return 0;
  }

  /** Adds an operator set import if the model lacks it. */
  importOpset(domain: string, version: number): void {
    if (this.opsetVersion(domain) > 0) return;
    this.modelFields.push(messageField(MODEL_OPSET, [bytesField(1, domain), varintField(2, version)]));
  }

  /** Bytes of every initializer's data, wherever it is held. */
  get weightBytes(): number {
    let total = 0;
    for (const t of this.initializers.values()) total += t.byteLength;
    return total;
  }

  /** The model as one protobuf: every tensor inline or where it already is (no data file is written). */
  toBytes(): Uint8Array {
    return encode(this.message((t) => this.keptLocation(t)));
  }

  /** Writes the graph, and the tensors `moveToData` selects into `dataFile` (see external-data.ts). */
  save(target: SaveTarget): void {
    const move = target.moveToData ?? ((t: OnnxTensor) => t.source.kind !== 'inline');
    const placement = target.dataFile
      ? writeExternalData(
          [...this.initializers.values()].filter(move),
          target.graphFile,
          target.dataFile,
          target.onTensor,
        )
      : new Map<string, DataLocation>();
    const bytes = encode(this.message((t) => (placement.has(t.name) ? placement.get(t.name)! : this.keptLocation(t))));
    const fd = openSync(target.graphFile, 'w');
    try {
      writeAll(fd, bytes, 0);
    } finally {
      closeSync(fd);
    }
  }

  /** Where a tensor stays when it is not moved: its external file (relative to `dir`) or inline. */
  private keptLocation(tensor: OnnxTensor): DataLocation | null {
    if (tensor.source.kind !== 'external') return null;
    const { file, offset, length } = tensor.source;
    if (!file.startsWith(this.dir + '/'))
      throw new Error(`initializer ${tensor.name}: its data is outside ${this.dir}`);
    return { location: file.slice(this.dir.length + 1), offset, length };
  }

  private message(locate: (t: OnnxTensor) => DataLocation | null): Message {
    const graph: Message = [...this.graphFields];
    for (const n of this.nodes) graph.push(messageField(GRAPH_NODE, n.fields));
    for (const t of this.initializers.values()) graph.push(messageField(GRAPH_INITIALIZER, t.toProto(locate(t))));
    for (const i of this.inputs) graph.push(messageField(GRAPH_INPUT, valueInfoMessage(i)));
    for (const o of this.outputs) graph.push(messageField(GRAPH_OUTPUT, valueInfoMessage(o)));
    for (const v of this.valueInfo) graph.push(messageField(GRAPH_VALUE_INFO, v));
    return [...this.modelFields, messageField(MODEL_GRAPH, graph)];
  }
}
