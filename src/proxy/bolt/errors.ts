/**
 * Every failure the codec can report on traffic is one of these classes, so the proxy can tell
 * "this one connection spoke something we cannot follow" (close or detach it) apart from a bug
 * in the sidecar (anything else).
 */
export abstract class BoltCodecError extends Error {
  abstract readonly reason: string;
}

export type BoltHandshakeErrorReason =
  /** The client's first 4 bytes are not 60 60 B0 17. */
  | 'bad-magic'
  /** The client opened TLS (a bolt+s:// or neo4j+s:// URI) on a port that expects plain Bolt. */
  | 'tls-client-hello'
  /** The client spoke HTTP (a browser or a WebSocket upgrade, which Neo4j also accepts on its Bolt port). */
  | 'http-request'
  /** The server answered with "HTTP": the upstream address is an HTTP port, not Bolt. */
  | 'http-response'
  /** The server's answer has bits set that no Bolt version uses. */
  | 'invalid-server-version'
  /** A manifest handshake of a version this codec does not know (only v1 exists). */
  | 'unsupported-manifest'
  /** A varint longer than 64 bits. */
  | 'varint-overflow'
  /** The server announced more version ranges than any real server would. */
  | 'manifest-too-large'
  /** The client sent bytes before the server answered, and more than a handshake could explain. */
  | 'unexpected-client-bytes';

export class BoltHandshakeError extends BoltCodecError {
  override readonly name = 'BoltHandshakeError';
  constructor(
    readonly reason: BoltHandshakeErrorReason,
    message: string,
  ) {
    super(message);
  }
}

export type BoltFramingErrorReason =
  /** A message whose first byte is not a PackStream tiny-struct marker (B0..BF). */
  | 'message-not-a-struct'
  /** A message that ended before its signature byte. */
  | 'message-too-short'
  /** A message whose payload the caller asked to keep grew beyond the configured limit. */
  | 'message-too-large'
  /** feed() after an earlier error: the stream position is lost for good. */
  | 'stream-failed';

export class BoltFramingError extends BoltCodecError {
  override readonly name = 'BoltFramingError';
  constructor(
    readonly reason: BoltFramingErrorReason,
    message: string,
  ) {
    super(message);
  }
}

export type PackStreamErrorReason =
  | 'truncated'
  | 'reserved-marker'
  | 'too-deep'
  | 'too-large'
  | 'non-string-key'
  | 'trailing-bytes'
  | 'not-a-struct'
  | 'unencodable-value';

export class PackStreamError extends BoltCodecError {
  override readonly name = 'PackStreamError';
  constructor(
    readonly reason: PackStreamErrorReason,
    message: string,
  ) {
    super(message);
  }
}

export type BoltConversationErrorReason =
  /** More requests in flight than the configured bound: memory would grow without limit. */
  | 'too-many-pending-requests'
  /** A summary with no request waiting: the peer is out of step, and with it every reply-to-request match. */
  | 'unexpected-summary';

export class BoltConversationError extends BoltCodecError {
  override readonly name = 'BoltConversationError';
  constructor(
    readonly reason: BoltConversationErrorReason,
    message: string,
  ) {
    super(message);
  }
}
