/**
 * Why the proxy closes a client connection itself: the error fronts and connection throw for problems
 * they find (`ConnectionProblem`), and the reason label each error, theirs or the codec's, is counted as.
 */
import {
  BoltCodecError,
  BoltConversationError,
  BoltFramingError,
  BoltHandshakeError,
  PackStreamError,
} from './bolt/index.ts';
import type { ProblemReason } from './metrics.ts';

/** What can go wrong with a connection once accepted (the limit is checked before accepting). */
export type ConnectionProblemReason = Exclude<ProblemReason, 'limit'>;

/** A problem the proxy found itself (not one the codec raised). */
export class ConnectionProblem extends Error {
  constructor(
    readonly reason: ConnectionProblemReason,
    message: string,
  ) {
    super(message);
  }
}

export function problemReason(error: unknown): ConnectionProblemReason {
  if (error instanceof ConnectionProblem) return error.reason;
  if (error instanceof BoltHandshakeError)
    return error.reason === 'http-response' ? 'upstream_not_bolt' : 'bad_handshake';
  if (error instanceof BoltFramingError) return error.reason === 'message-too-large' ? 'message_too_large' : 'framing';
  if (error instanceof PackStreamError) return 'undecodable_message';
  if (error instanceof BoltConversationError)
    return error.reason === 'unexpected-summary' ? 'out_of_step' : 'too_many_pending';
  return 'internal_error';
}

/** Codec errors and the proxy's own problems as they are; anything else is a bug in the proxy. */
export function problemCause(error: unknown): Error {
  if (error instanceof BoltCodecError || error instanceof ConnectionProblem) return error;
  return new Error('proxy bug: unexpected error while handling a connection', { cause: error });
}
