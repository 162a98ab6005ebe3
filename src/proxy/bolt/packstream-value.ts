/**
 * PackStream v1 values as decoded here. Maps are Map instances (insertion order kept, and no prototype
 * keys such as "__proto__" can be smuggled in); integers are numbers, or bigints beyond 2^53.
 */
export type PackStreamValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PackStreamFloat
  | PackStreamValue[]
  | PackStreamMap
  | PackStreamStruct;

export type PackStreamMap = Map<string, PackStreamValue>;

export class PackStreamStruct {
  constructor(
    readonly signature: number,
    readonly fields: PackStreamValue[],
  ) {}
}

/**
 * A float kept distinct from integers. JavaScript cannot tell 2.0 from 2, so decoding with
 * preserveFloats yields these, and re-encoding then writes a float where the server wrote one.
 */
export class PackStreamFloat {
  constructor(readonly value: number) {}
}

export function isPackStreamMap(value: PackStreamValue | undefined): value is PackStreamMap {
  return value instanceof Map;
}

export function isPackStreamList(value: PackStreamValue | undefined): value is PackStreamValue[] {
  return Array.isArray(value);
}

export function asString(value: PackStreamValue | undefined): string | null {
  return typeof value === 'string' ? value : null;
}

/** Integers and floats alike, as a JavaScript number (bigints beyond 2^53 lose precision). */
export function asNumber(value: PackStreamValue | undefined): number | null {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof PackStreamFloat) return value.value;
  return null;
}

export function asBoolean(value: PackStreamValue | undefined): boolean | null {
  return typeof value === 'boolean' ? value : null;
}
