/**
 * What an upstream connection is pooled by: everything fixed for its life (Bolt version, capabilities
 * and the HELLO's settings) and the login, kept only as a keyed hash. The key is random per process and
 * never leaves memory, so a digest is worthless outside this process and says nothing about a password.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  type BoltVersion,
  encodePackStream,
  formatBoltVersion,
  type PackStreamMap,
  type PackStreamValue,
} from '../bolt/index.ts';

/** HELLO fields that name the client, not the connection's behaviour: never part of a key. */
const CLIENT_IDENTITY_FIELDS: ReadonlySet<string> = new Set(['user_agent', 'bolt_agent']);
/** Fields of a login (HELLO before Bolt 5.1, LOGON after). */
const LOGIN_FIELDS: ReadonlySet<string> = new Set(['scheme', 'principal', 'credentials', 'realm', 'parameters']);
/** Fields of a login that name the user, whatever the credentials: what Neo4j counts failed logins by. */
const PRINCIPAL_FIELDS: ReadonlySet<string> = new Set(['scheme', 'principal', 'realm']);

const PROCESS_KEY = randomBytes(32);

/** Bolt 5.1 moved the login from HELLO into LOGON, which a connection can repeat after LOGOFF. */
export function hasLogon(version: BoltVersion): boolean {
  return version.major > 5 || (version.major === 5 && version.minor >= 1);
}

export interface Login {
  /** Keyed hash of the whole login (scheme, principal, credentials, realm, parameters). */
  readonly digest: Buffer;
  /** Keyed hash of who logs in (scheme, principal, realm), without the credentials. */
  readonly principal: Buffer;
}

/** A login from the metadata map of a LOGON, or of a HELLO before 5.1. */
export function loginOf(fields: PackStreamMap): Login {
  return {
    digest: digest(pick(fields, (key) => LOGIN_FIELDS.has(key))),
    principal: digest(pick(fields, (key) => PRINCIPAL_FIELDS.has(key))),
  };
}

/** Constant-time, so how long a comparison takes says nothing about how close a guess was. */
export function sameLogin(a: Login, b: Login): boolean {
  return a.digest.length === b.digest.length && timingSafeEqual(a.digest, b.digest);
}

/** The same user, whatever the credentials; constant-time like sameLogin. */
export function samePrincipal(a: Login, b: Login): boolean {
  return a.principal.length === b.principal.length && timingSafeEqual(a.principal, b.principal);
}

/**
 * The part of the key fixed by the handshake and HELLO: Bolt version, client capabilities, and the HELLO
 * settings (routing context, patch_bolt, notification defaults), whatever the client's agent.
 */
export function settingsKey(version: BoltVersion, capabilities: bigint, hello: PackStreamMap): string {
  const settings = pick(hello, (key) => !CLIENT_IDENTITY_FIELDS.has(key) && !LOGIN_FIELDS.has(key));
  return `${formatBoltVersion(version)}/${capabilities}/${encodePackStream(settings).toString('base64')}`;
}

function pick(fields: PackStreamMap, keep: (key: string) => boolean): PackStreamMap {
  const entries: [string, PackStreamValue][] = [...fields.entries()].filter(([key]) => keep(key));
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return new Map(entries);
}

function digest(value: PackStreamMap): Buffer {
  return createHmac('sha256', PROCESS_KEY).update(encodePackStream(value)).digest();
}
