/**
 * Pure, I/O-free Bolt wire codec for observing proxied traffic: handshake, dechunking, PackStream,
 * conversation tracking, the one re-encoding the proxy does (routing tables), and the few messages and
 * handshake answers the proxy writes itself.
 */

export {
  BoltDechunker,
  type BoltDechunkerOptions,
  type BoltMessageFrame,
  chunkMessage,
  DEFAULT_MAX_PAYLOAD_BYTES,
  MAX_CHUNK_SIZE,
} from './chunking.ts';
export {
  type AccessMode,
  type AuthFailureEvent,
  BoltConversationTracker,
  type ConversationEvent,
  type ConversationTrackerOptions,
  type FailureEvent,
  type HomeDatabaseMemory,
  type MessageCounts,
  type ObservedMessage,
  type QueryFinishedEvent,
  type QueryOutcome,
  type RoutingTableMessage,
} from './conversation-tracker.ts';
export {
  BoltCodecError,
  BoltConversationError,
  type BoltConversationErrorReason,
  BoltFramingError,
  type BoltFramingErrorReason,
  BoltHandshakeError,
  type BoltHandshakeErrorReason,
  PackStreamError,
  type PackStreamErrorReason,
} from './errors.ts';
export {
  BOLT_MAGIC,
  BoltHandshake,
  type BoltVersion,
  type BoltVersionOffer,
  type BoltVersionRange,
  encodeManifestAnswer,
  encodeVarint,
  formatBoltVersion,
  type HandshakeOutcome,
  type HandshakeProgress,
  type ServerHandshakeProgress,
} from './handshake.ts';
export {
  ignoredMessage,
  isSummary,
  messageMetadata,
  messagePayload,
  requestMessage,
  successMessage,
} from './messages.ts';
export {
  DEFAULT_MAX_DEPTH,
  decodeBoltMessage,
  decodePackStream,
  type PackStreamDecodeOptions,
  PackStreamReader,
  readMessageMapEntries,
} from './packstream-decoder.ts';
export { encodePackStream } from './packstream-encoder.ts';
export {
  PackStreamFloat,
  type PackStreamMap,
  PackStreamStruct,
  type PackStreamValue,
} from './packstream-value.ts';
export { rewriteRouteSuccess, rewriteRoutingProcedureRecord } from './routing-table.ts';
export { type BoltMessageLabel, type BoltMessageName, BoltSignature, messageName } from './signatures.ts';
