/**
 * Query fingerprints, the way pg_stat_statements groups statements: literal values become `?`, so
 * `MATCH (n {id: 1})` and `MATCH (n {id: 2})` are one query shape with one short id.
 *
 * A hand-written tokenizer rather than a Cypher parser: it only has to tell literals from
 * everything else, it must never throw on garbage (the proxy feeds it whatever clients send), and
 * it runs once per distinct text (FingerprintCache), so linear and allocation-light is enough.
 *
 * What becomes `?`: strings (either quote, with escapes), numbers (decimal, hex, octal, float,
 * exponent, `_` separators, a sign where it is unary), true, false, null (but not in `IS [NOT]
 * NULL`), and a whole list whose elements are all literals (lists and maps of literals nest).
 * A map keeps its keys (property keys are schema: `{name: ?}`). What stays: `$params`, identifiers
 * (backticked ones verbatim), labels, keywords (as written), operators. Comments are dropped and
 * spacing is canonical: one space between two words and after a comma, none elsewhere, so layout
 * never splits a shape.
 */
import { createHash } from 'node:crypto';

export interface Fingerprint {
  /** 16 hex digits of the SHA-256 of `text`: stable across processes, versions and sources. */
  readonly id: string;
  /** The normalised text (literal values replaced by `?`), cut at MAX_NORMALIZED_TEXT_LENGTH. */
  readonly text: string;
}

/** Normalised texts kept for display are cut here; the id is taken before the cut. */
export const MAX_NORMALIZED_TEXT_LENGTH = 2048;
/** Longer texts are fingerprinted but not cached: a few huge texts must not hold the cache's memory. */
export const MAX_CACHED_TEXT_LENGTH = 16 * 1024;
export const PLACEHOLDER = '?';

enum Kind {
  Word = 0,
  Param = 1,
  Literal = 2,
  Punct = 3,
}

interface Token {
  kind: Kind;
  text: string;
}

/** Keywords after which `-1` is a signed number and `[` opens a list (not a subscript). */
const EXPRESSION_KEYWORDS: ReadonlySet<string> = new Set([
  'RETURN',
  'WHERE',
  'AND',
  'OR',
  'XOR',
  'NOT',
  'WITH',
  'SET',
  'WHEN',
  'THEN',
  'ELSE',
  'IN',
  'CONTAINS',
  'STARTS',
  'ENDS',
  'LIMIT',
  'SKIP',
  'OFFSET',
  'UNWIND',
  'CASE',
  'BY',
  'DISTINCT',
  'IS',
  'YIELD',
  'ON',
  'REMOVE',
  'DELETE',
  'MERGE',
  'CREATE',
  'MATCH',
  'CALL',
]);

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function isWordStart(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95 || code > 127;
}

function isWordPart(code: number): boolean {
  return isWordStart(code) || isDigit(code);
}

function isSpace(code: number): boolean {
  return code === 32 || code === 9 || code === 10 || code === 13 || code === 12 || code === 11 || code === 0xa0;
}

/** Multi-character operators kept as one token, so spacing rules see them whole. */
const OPERATORS = ['<>', '<=', '>=', '=~', '+=', '->', '<-', '..', '||', '::'];

/** A token after which an expression has ended: `-` is binary and `[` subscripts. */
function endsValue(token: Token | undefined): boolean {
  if (token === undefined) return false;
  if (token.kind === Kind.Literal || token.kind === Kind.Param) return true;
  if (token.kind === Kind.Word) return !EXPRESSION_KEYWORDS.has(token.text.toUpperCase());
  return token.text === ')' || token.text === ']' || token.text === '}';
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const length = text.length;
  let i = 0;
  while (i < length) {
    const code = text.charCodeAt(i);
    if (isSpace(code)) {
      i++;
      continue;
    }
    if (code === 47 /* / */ && text.charCodeAt(i + 1) === 47) {
      const end = text.indexOf('\n', i + 2);
      i = end === -1 ? length : end + 1;
      continue;
    }
    if (code === 47 && text.charCodeAt(i + 1) === 42 /* * */) {
      const end = text.indexOf('*/', i + 2);
      i = end === -1 ? length : end + 2;
      continue;
    }
    if (code === 39 /* ' */ || code === 34 /* " */) {
      i = skipString(text, i, code);
      tokens.push({ kind: Kind.Literal, text: PLACEHOLDER });
      continue;
    }
    if (code === 96 /* ` */) {
      const end = skipBackticked(text, i);
      tokens.push({ kind: Kind.Word, text: text.slice(i, end) });
      i = end;
      continue;
    }
    if (code === 36 /* $ */) {
      let end = i + 1;
      if (text.charCodeAt(end) === 96) end = skipBackticked(text, end);
      else while (end < length && isWordPart(text.charCodeAt(end))) end++;
      tokens.push({ kind: Kind.Param, text: text.slice(i, end) });
      i = end;
      continue;
    }
    const startsNumber = isDigit(code) || (code === 46 /* . */ && isDigit(text.charCodeAt(i + 1)));
    if (startsNumber && !(code === 46 && endsValue(tokens[tokens.length - 1]))) {
      i = skipNumber(text, i);
      signNumber(tokens);
      tokens.push({ kind: Kind.Literal, text: PLACEHOLDER });
      continue;
    }
    if (isWordStart(code)) {
      let end = i + 1;
      while (end < length && isWordPart(text.charCodeAt(end))) end++;
      const word = text.slice(i, end);
      i = end;
      if (isValueWord(word, tokens, text, i)) tokens.push({ kind: Kind.Literal, text: PLACEHOLDER });
      else tokens.push({ kind: Kind.Word, text: word });
      continue;
    }
    const operator = OPERATORS.find((candidate) => text.startsWith(candidate, i));
    if (operator !== undefined) {
      tokens.push({ kind: Kind.Punct, text: operator });
      i += operator.length;
      continue;
    }
    tokens.push({ kind: Kind.Punct, text: text[i]! });
    i++;
  }
  return tokens;
}

/** A unary minus or plus right before a number belongs to the literal. */
function signNumber(tokens: Token[]): void {
  const last = tokens[tokens.length - 1];
  if (last === undefined || last.kind !== Kind.Punct || (last.text !== '-' && last.text !== '+')) return;
  if (endsValue(tokens[tokens.length - 2])) return;
  tokens.pop();
}

/** true / false / null as values; not property keys (`n.null`), map keys, functions, or `IS NULL`. */
function isValueWord(word: string, tokens: readonly Token[], text: string, next: number): boolean {
  const upper = word.length <= 5 ? word.toUpperCase() : '';
  if (upper !== 'TRUE' && upper !== 'FALSE' && upper !== 'NULL') return false;
  const previous = tokens[tokens.length - 1];
  if (previous !== undefined && previous.kind === Kind.Punct && previous.text === '.') return false;
  let after = next;
  while (after < text.length && isSpace(text.charCodeAt(after))) after++;
  const following = text.charCodeAt(after);
  if (following === 58 /* : */ || following === 40 /* ( */) return false;
  if (upper === 'NULL' && previous !== undefined) {
    const before = previous.text.toUpperCase();
    if (before === 'IS') return false;
    if (before === 'NOT' && tokens[tokens.length - 2]?.text.toUpperCase() === 'IS') return false;
  }
  return true;
}

function skipString(text: string, start: number, quote: number): number {
  let i = start + 1;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === 92 /* \ */) i += 2;
    else if (code === quote) return i + 1;
    else i++;
  }
  return text.length;
}

function skipBackticked(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length) {
    if (text.charCodeAt(i) === 96) {
      if (text.charCodeAt(i + 1) === 96) i += 2;
      else return i + 1;
    } else i++;
  }
  return text.length;
}

/** 42, 1_000, 0x1F, 0o17, 017, 1.5, .5, 1e10, 1.5E-3; `1..3` is a range, not the float `1.`. */
function skipNumber(text: string, start: number): number {
  let i = start;
  const second = text.charCodeAt(start + 1) | 0x20;
  if (text.charCodeAt(start) === 48 && (second === 120 /* x */ || second === 111) /* o */) {
    i += 2;
    while (i < text.length && isWordPart(text.charCodeAt(i))) i++;
    return i;
  }
  while (i < text.length && (isDigit(text.charCodeAt(i)) || text.charCodeAt(i) === 95)) i++;
  if (text.charCodeAt(i) === 46 && isDigit(text.charCodeAt(i + 1))) {
    i++;
    while (i < text.length && (isDigit(text.charCodeAt(i)) || text.charCodeAt(i) === 95)) i++;
  }
  if ((text.charCodeAt(i) | 0x20) === 101 /* e */) {
    let j = i + 1;
    const sign = text.charCodeAt(j);
    if (sign === 43 || sign === 45) j++;
    if (isDigit(text.charCodeAt(j))) {
      i = j;
      while (i < text.length && isDigit(text.charCodeAt(i))) i++;
    }
  }
  // A trailing type suffix or garbage glued on (`1f`, `12abc`) stays part of the one token.
  while (i < text.length && isWordPart(text.charCodeAt(i))) i++;
  return i;
}

/** Deeper nesting is left unfolded: the walk is recursive and fed untrusted text. */
const MAX_FOLD_DEPTH = 32;

/**
 * Folds every list made only of literals (maps of literals inside lists included) into one `?`, so
 * `[1, [2, 3], {a: 'x'}]` and `[]` both become `?`. A `[` after a value is a subscript (`n[0]`) and
 * stays. Each list is examined once (results memoised), so this is linear in the token count.
 */
function foldLiteralLists(tokens: readonly Token[]): Token[] {
  const memo = new Map<number, number>();
  const isPunct = (at: number, text: string) => tokens[at]?.kind === Kind.Punct && tokens[at]!.text === text;

  const value = (at: number, depth: number): number => {
    const token = tokens[at];
    if (token === undefined || depth > MAX_FOLD_DEPTH) return -1;
    if (token.kind === Kind.Literal) return at + 1;
    if (isPunct(at, '[')) return list(at, depth + 1);
    if (isPunct(at, '{')) return map(at, depth + 1);
    return -1;
  };
  const list = (start: number, depth: number): number => {
    const known = memo.get(start);
    if (known !== undefined) return known;
    let end = -1;
    let at = start + 1;
    if (isPunct(at, ']')) end = at + 1;
    else {
      for (;;) {
        at = value(at, depth);
        if (at < 0) break;
        if (isPunct(at, ']')) {
          end = at + 1;
          break;
        }
        if (!isPunct(at, ',')) break;
        at++;
      }
    }
    memo.set(start, end);
    return end;
  };
  const map = (start: number, depth: number): number => {
    let at = start + 1;
    if (isPunct(at, '}')) return at + 1;
    for (;;) {
      if (tokens[at]?.kind !== Kind.Word || !isPunct(at + 1, ':')) return -1;
      at = value(at + 2, depth);
      if (at < 0) return -1;
      if (isPunct(at, '}')) return at + 1;
      if (!isPunct(at, ',')) return -1;
      at++;
    }
  };

  const out: Token[] = [];
  for (let at = 0; at < tokens.length; ) {
    if (isPunct(at, '[') && !endsValue(out[out.length - 1])) {
      const end = list(at, 0);
      if (end > 0) {
        out.push({ kind: Kind.Literal, text: PLACEHOLDER });
        at = end;
        continue;
      }
    }
    out.push(tokens[at]!);
    at++;
  }
  return out;
}

/** Operators printed with a space either side; `-`, `*` and `.` stay tight (patterns, `count(*)`, ranges). */
const SPACED_OPERATORS: ReadonlySet<string> = new Set([
  '=',
  '<>',
  '<=',
  '>=',
  '=~',
  '+=',
  '<',
  '>',
  '|',
  '+',
  '/',
  '%',
  '^',
]);
/** Keywords after which `(`, `[` or `{` opens a pattern, list or map rather than calling a function. */
const SPACED_KEYWORDS: ReadonlySet<string> = new Set([
  ...EXPRESSION_KEYWORDS,
  'OPTIONAL',
  'DETACH',
  'FOREACH',
  'EXISTS',
  'AS',
]);

function isWordLike(token: Token): boolean {
  return token.kind !== Kind.Punct;
}

/** Spacing is a function of the tokens alone, so two layouts of one query print (and hash) the same. */
function spaceBetween(previous: Token, token: Token, inMap: boolean): boolean {
  const prev = previous.text;
  const next = token.text;
  if (isWordLike(previous) && isWordLike(token)) return true;
  if (prev === ',' || SPACED_OPERATORS.has(prev) || SPACED_OPERATORS.has(next)) return true;
  if (inMap && prev === ':') return true;
  if ((prev === ')' || prev === ']' || prev === '}') && isWordLike(token)) return true;
  if (previous.kind === Kind.Word && (next === '(' || next === '[' || next === '{')) {
    return next === '{' || SPACED_KEYWORDS.has(prev.toUpperCase());
  }
  return false;
}

function render(tokens: readonly Token[]): string {
  let text = '';
  let previous: Token | undefined;
  const brackets: string[] = [];
  for (const token of tokens) {
    if (previous !== undefined && spaceBetween(previous, token, brackets[brackets.length - 1] === '{')) text += ' ';
    text += token.text;
    if (token.kind === Kind.Punct) {
      if (token.text === '(' || token.text === '[' || token.text === '{') brackets.push(token.text);
      else if (token.text === ')' || token.text === ']' || token.text === '}') brackets.pop();
    }
    previous = token;
  }
  return text;
}

/** The normalised text of a query: literals as `?`, comments gone, spacing canonical. */
export function normalizeCypher(query: string): string {
  return render(foldLiteralLists(tokenize(query)));
}

export function fingerprintId(normalized: string): string {
  return createHash('sha256').update(normalized).digest('hex').slice(0, 16);
}

export function fingerprint(query: string): Fingerprint {
  const normalized = normalizeCypher(query);
  return {
    id: fingerprintId(normalized),
    text:
      normalized.length > MAX_NORMALIZED_TEXT_LENGTH
        ? `${normalized.slice(0, MAX_NORMALIZED_TEXT_LENGTH)}…`
        : normalized,
  };
}

/**
 * Exact query text → fingerprint, bounded. Two generations instead of a strict LRU: a hit is one or
 * two Map lookups with no reordering, and when the young generation fills it becomes the old one,
 * so texts not used for a whole generation are dropped. At most 2 × capacity entries are held.
 */
export class FingerprintCache {
  readonly #capacity: number;
  #young = new Map<string, Fingerprint>();
  #old = new Map<string, Fingerprint>();

  constructor(capacity = 1000) {
    this.#capacity = Math.max(1, capacity);
  }

  get(query: string): Fingerprint {
    const young = this.#young.get(query);
    if (young !== undefined) return young;
    let found = this.#old.get(query);
    if (found === undefined) {
      found = fingerprint(query);
      if (query.length > MAX_CACHED_TEXT_LENGTH) return found;
    }
    if (this.#young.size >= this.#capacity) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    this.#young.set(query, found);
    return found;
  }

  get size(): number {
    return this.#young.size + this.#old.size;
  }

  clear(): void {
    this.#young.clear();
    this.#old.clear();
  }
}
