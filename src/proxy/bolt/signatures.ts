/** Bolt message signatures (the PackStream struct tag of each message). */
export const BoltSignature = {
  HELLO: 0x01,
  GOODBYE: 0x02,
  ACK_FAILURE: 0x0e,
  RESET: 0x0f,
  RUN: 0x10,
  BEGIN: 0x11,
  COMMIT: 0x12,
  ROLLBACK: 0x13,
  DISCARD: 0x2f,
  PULL: 0x3f,
  TELEMETRY: 0x54,
  ROUTE: 0x66,
  LOGON: 0x6a,
  LOGOFF: 0x6b,
  SUCCESS: 0x70,
  RECORD: 0x71,
  IGNORED: 0x7e,
  FAILURE: 0x7f,
} as const;

export type BoltMessageName = keyof typeof BoltSignature;
/** Any signature outside the table above; a closed set keeps metric label values bounded. */
export type BoltMessageLabel = BoltMessageName | 'UNKNOWN';

const namesBySignature: ReadonlyMap<number, BoltMessageName> = new Map(
  (Object.entries(BoltSignature) as [BoltMessageName, number][]).map(([name, signature]) => [signature, name]),
);

export function messageName(signature: number): BoltMessageLabel {
  return namesBySignature.get(signature) ?? 'UNKNOWN';
}
