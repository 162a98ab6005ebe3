/**
 * The messages the proxy reads the metadata of or writes itself: a message's metadata map, which
 * signatures are summaries, and the encoders for requests, SUCCESS and IGNORED (one metadata map at
 * most, as every one of them carries).
 */
import { chunkMessage } from './chunking.ts';
import { decodeBoltMessage } from './packstream-decoder.ts';
import { encodePackStream } from './packstream-encoder.ts';
import { type PackStreamMap, PackStreamStruct } from './packstream-value.ts';
import { BoltSignature } from './signatures.ts';

/** The first field of a message when it is a map (HELLO, LOGON, RUN's extra sits later), else null. */
export function messageMetadata(payload: Buffer | null): PackStreamMap | null {
  if (payload === null) return null;
  const first = decodeBoltMessage(payload).fields[0];
  return first instanceof Map ? (first as PackStreamMap) : null;
}

/** SUCCESS, FAILURE and IGNORED: each ends the reply to exactly one request. */
export function isSummary(signature: number): boolean {
  return (
    signature === BoltSignature.SUCCESS || signature === BoltSignature.FAILURE || signature === BoltSignature.IGNORED
  );
}

/** A message with no field but an optional metadata map, unchunked: the payload a dechunker hands on. */
export function messagePayload(signature: number, metadata?: PackStreamMap): Buffer {
  return encodePackStream(new PackStreamStruct(signature, metadata === undefined ? [] : [metadata]));
}

/** A request (RESET, LOGOFF, LOGON {auth}...) or any message of one optional metadata map, chunked for the wire. */
export function requestMessage(signature: number, metadata?: PackStreamMap): Buffer {
  return chunkMessage(messagePayload(signature, metadata));
}

/** SUCCESS with its metadata ({} when none: a SUCCESS always carries a map), chunked. */
export function successMessage(metadata: PackStreamMap = new Map()): Buffer {
  return requestMessage(BoltSignature.SUCCESS, metadata);
}

/** IGNORED (no fields), chunked. */
export function ignoredMessage(): Buffer {
  return requestMessage(BoltSignature.IGNORED);
}
