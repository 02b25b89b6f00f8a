/**
 * A model's external data file: reading one tensor's byte range from it, and writing tensors into a new one, one at
 * a time, each aligned so that ONNX Runtime can map it in place.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { dirname, isAbsolute, relative } from 'node:path';
import type { OnnxTensor } from './onnx-tensor';

/** Where a tensor's bytes are in an external data file; `location` is relative to the graph's directory. */
export interface DataLocation {
  location: string;
  offset: number;
  length: number;
}

/** Tensors of at least this size start at a page boundary in a data file, so that they can be mapped in place. */
const PAGE_ALIGN_FROM = 1 << 20;

/**
 * Writes `tensors` into `dataFile` (in `graphFile`'s directory or below it), streaming one tensor at a time: the
 * memory used is about the largest tensor, whatever the model's size. Returns where each tensor went, by name.
 */
export function writeExternalData(
  tensors: readonly OnnxTensor[],
  graphFile: string,
  dataFile: string,
  onTensor?: (written: number, total: number) => void,
): Map<string, DataLocation> {
  const placement = new Map<string, DataLocation>();
  // a location relative to the graph's directory, and inside it, as ONNX Runtime requires
  const dataLocation = relative(dirname(graphFile), dataFile);
  if (dataLocation.startsWith('..') || isAbsolute(dataLocation)) {
    throw new Error(`${dataFile}: external data must be in the graph's directory or below it`);
  }
  const fd = openSync(dataFile, 'w');
  try {
    let offset = 0;
    let written = 0;
    for (const tensor of tensors) {
      const align = tensor.byteLength >= PAGE_ALIGN_FROM ? 4096 : 64;
      const padded = Math.ceil(offset / align) * align;
      if (padded > offset) writeSync(fd, new Uint8Array(padded - offset), 0, padded - offset, offset);
      offset = padded;
      const bytes = tensor.read();
      if (bytes.length !== tensor.byteLength) {
        throw new Error(`initializer ${tensor.name}: ${bytes.length} bytes where ${tensor.byteLength} were expected`);
      }
      writeAll(fd, bytes, offset);
      placement.set(tensor.name, { location: dataLocation, offset, length: bytes.length });
      offset += bytes.length;
      onTensor?.(++written, tensors.length);
    }
    if (fstatSync(fd).size !== offset) throw new Error(`${dataFile}: short write`);
  } finally {
    closeSync(fd);
  }
  return placement;
}

export function readRange(file: string, offset: number, length: number): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, out, done, length - done, offset + done);
      if (n === 0) throw new Error(`${file}: ends before byte ${offset + length} (a tensor's external data)`);
      done += n;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

export function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}
