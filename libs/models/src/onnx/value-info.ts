/** A graph input's or output's ValueInfoProto: read into a `ValueInfo`, and written back from one. */
import { asMessage, bytesField, first, firstString, Message, messageField, str, varintField } from './protobuf';

/** A tensor's value info: its name, element type and dims (numbers, or names of dynamic axes). */
export interface ValueInfo {
  name: string;
  type: number;
  dims: (number | string)[] | null;
}

export function readValueInfo(message: Message): ValueInfo {
  const name = firstString(message, 1) ?? '';
  const typeField = first(message, 2);
  const tensorField = typeField && first(asMessage(typeField), 1);
  if (!tensorField) return { name, type: 0, dims: null };
  const tensor = asMessage(tensorField);
  const type = Number(first(tensor, 1)?.value ?? 0n);
  const shapeField = first(tensor, 2);
  if (!shapeField) return { name, type, dims: null };
  const dims = asMessage(shapeField)
    .filter((f) => f.no === 1)
    .map((d) => {
      const dim = asMessage(d);
      const value = first(dim, 1);
      if (value) return Number(value.value);
      const param = first(dim, 2);
      return param ? str(param) : '?';
    });
  return { name, type, dims };
}

export function valueInfoMessage(info: ValueInfo): Message {
  const tensorType: Message = [varintField(1, info.type)];
  if (info.dims) {
    const shape: Message = info.dims.map((d) =>
      messageField(1, [typeof d === 'number' ? varintField(1, d) : bytesField(2, d)]),
    );
    tensorType.push(messageField(2, shape));
  }
  return [bytesField(1, info.name), messageField(2, [messageField(1, tensorType)])];
}
