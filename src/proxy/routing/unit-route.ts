/**
 * Where a unit of work goes, read from the message that starts it and nothing else (no query parsing):
 * BEGIN's or an auto-commit RUN's `mode` ("r": a reader, anything else: the writer) and `db` (absent:
 * the user's home database). A ROUTE from the client goes to a router.
 */
import { type BoltMessageFrame, BoltSignature, decodeBoltMessage, readMessageMapEntries } from '../bolt/index.ts';

export type UnitAccess = 'read' | 'write' | 'route';

export interface UnitRoute {
  readonly access: UnitAccess;
  /** null: the user's home database. */
  readonly database: string | null;
  /** The user the client impersonates (its home database may differ from the login's); null: none. */
  readonly impersonatedUser: string | null;
}

const ROUTE_KEYS: ReadonlySet<string> = new Set(['mode', 'db', 'imp_user']);
/** Where the map with mode and db sits: BEGIN's first field, RUN's third (after query and parameters). */
const EXTRA_FIELD: Readonly<Record<number, number>> = { [BoltSignature.BEGIN]: 0, [BoltSignature.RUN]: 2 };

export function unitRoute(frame: BoltMessageFrame): UnitRoute {
  if (frame.signature === BoltSignature.ROUTE) return clientRoute(frame);
  const field = EXTRA_FIELD[frame.signature];
  const extra =
    field === undefined || frame.payload === null ? null : readMessageMapEntries(frame.payload, field, ROUTE_KEYS);
  const db = extra?.get('db');
  const impersonated = extra?.get('imp_user');
  return {
    access: extra?.get('mode') === 'r' ? 'read' : 'write',
    database: typeof db === 'string' && db !== '' ? db : null,
    impersonatedUser: typeof impersonated === 'string' && impersonated !== '' ? impersonated : null,
  };
}

/** A client's ROUTE: Bolt 4.4+ names the database in its third field's map, 4.3 as that field itself. */
function clientRoute(frame: BoltMessageFrame): UnitRoute {
  const extra = frame.payload === null ? null : readMessageMapEntries(frame.payload, 2, ROUTE_KEYS);
  let database: unknown = extra?.get('db');
  if (extra === null && frame.payload !== null) {
    const fields = decodeBoltMessage(frame.payload).fields;
    database = fields[2];
  }
  const impersonated = extra?.get('imp_user');
  return {
    access: 'route',
    database: typeof database === 'string' && database !== '' ? database : null,
    impersonatedUser: typeof impersonated === 'string' && impersonated !== '' ? impersonated : null,
  };
}
