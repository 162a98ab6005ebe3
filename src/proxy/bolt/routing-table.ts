/**
 * The routing tables the proxy rewrites so that drivers route back through it: the SUCCESS to ROUTE
 * (Bolt 4.3+) and the RECORD of the routing procedures (Bolt 3 to 4.2).
 */
import { chunkMessage } from './chunking.ts';
import { decodeBoltMessage } from './packstream-decoder.ts';
import { encodePackStream } from './packstream-encoder.ts';
import {
  asString,
  isPackStreamList,
  isPackStreamMap,
  type PackStreamMap,
  PackStreamStruct,
  type PackStreamValue,
} from './packstream-value.ts';
import { BoltSignature } from './signatures.ts';

const SERVERS_FIELD = 'servers';

/** The `rt` map of a SUCCESS reply to ROUTE, or null if this SUCCESS carries none. */
function routeSuccessTable(message: PackStreamStruct): PackStreamMap | null {
  const metadata = message.fields[0];
  if (message.signature !== BoltSignature.SUCCESS || !isPackStreamMap(metadata)) return null;
  const table = metadata.get('rt');
  return isPackStreamMap(table) ? table : null;
}

/** Index of the servers column in a routing procedure's record, from the RUN SUCCESS `fields`. */
function routingRecordServersIndex(record: readonly PackStreamValue[], fields?: readonly string[]): number {
  const named = fields?.indexOf(SERVERS_FIELD) ?? -1;
  if (named >= 0) return named;
  // Without field names, the servers column is the list of {addresses, role} maps.
  return record.findIndex(
    (value) => isPackStreamList(value) && value.length > 0 && value.every((entry) => isPackStreamMap(entry)),
  );
}

/**
 * Replaces every address with the advertised one, once per role, and merges entries of the same role.
 * A role the server listed with no address keeps none: an empty WRITE list means "no leader right now",
 * and inventing one would send writes to a proxy that cannot place them.
 */
export function rewriteServerList(servers: readonly PackStreamValue[], advertisedAddress: string): PackStreamValue[] {
  const byRole = new Map<string, PackStreamMap>();
  const rewritten: PackStreamValue[] = [];
  for (const entry of servers) {
    if (!isPackStreamMap(entry)) {
      rewritten.push(entry);
      continue;
    }
    const role = asString(entry.get('role'));
    const addresses = entry.get('addresses');
    const hasAddresses = isPackStreamList(addresses) && addresses.length > 0;
    const existing = role === null ? undefined : byRole.get(role);
    if (existing !== undefined) {
      if (hasAddresses) existing.set('addresses', [advertisedAddress]);
      continue;
    }
    const copy: PackStreamMap = new Map(entry);
    copy.set('addresses', hasAddresses ? [advertisedAddress] : []);
    if (role !== null) byRole.set(role, copy);
    rewritten.push(copy);
  }
  return rewritten;
}

/**
 * Re-encodes a SUCCESS reply to ROUTE (rt.servers[].addresses) with every address replaced by the
 * advertised one. Returns the chunked bytes to send instead of the original message, or null when the
 * message holds no routing table (forward the original then).
 */
export function rewriteRouteSuccess(payload: Uint8Array, advertisedAddress: string): Buffer | null {
  const message = decodeBoltMessage(payload, { preserveFloats: true });
  const table = routeSuccessTable(message);
  const servers = table?.get(SERVERS_FIELD);
  if (table == null || !isPackStreamList(servers)) return null;
  const metadata = message.fields[0] as PackStreamMap;
  const rewrittenTable: PackStreamMap = new Map(table);
  rewrittenTable.set(SERVERS_FIELD, rewriteServerList(servers, advertisedAddress));
  const rewrittenMetadata: PackStreamMap = new Map(metadata);
  rewrittenMetadata.set('rt', rewrittenTable);
  return encodeMessage(BoltSignature.SUCCESS, [rewrittenMetadata, ...message.fields.slice(1)]);
}

/**
 * Re-encodes a RECORD of dbms.cluster.routing.getRoutingTable / dbms.routing.getRoutingTable (columns
 * ttl, servers), used by Bolt 3 to 4.2 clients, with every address replaced. `fields` are the column
 * names from the RUN SUCCESS; without them the servers column is found by shape. Null: not such a record.
 */
export function rewriteRoutingProcedureRecord(
  payload: Uint8Array,
  advertisedAddress: string,
  fields?: readonly string[],
): Buffer | null {
  const message = decodeBoltMessage(payload, { preserveFloats: true });
  const values = message.fields[0];
  if (message.signature !== BoltSignature.RECORD || !isPackStreamList(values)) return null;
  const serversIndex = routingRecordServersIndex(values, fields);
  const servers = values[serversIndex];
  if (!isPackStreamList(servers)) return null;
  const rewrittenValues = [...values];
  rewrittenValues[serversIndex] = rewriteServerList(servers, advertisedAddress);
  return encodeMessage(BoltSignature.RECORD, [rewrittenValues, ...message.fields.slice(1)]);
}

function encodeMessage(signature: number, fields: PackStreamValue[]): Buffer {
  return chunkMessage(encodePackStream(new PackStreamStruct(signature, fields)));
}
