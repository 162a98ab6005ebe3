/**
 * Property and fuzz tests of the Bolt codec. The total number of generated or mutated inputs across the
 * properties is BOLT_FUZZ_RUNS (default 120,000, about 20 s on 2 cores); `npm run fuzz:bolt` runs
 * 1,000,000. BOLT_FUZZ_SEED replays a failing run with the seed fast-check printed.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  BoltCodecError,
  BoltConversationTracker,
  BoltDechunker,
  BoltHandshake,
  type BoltMessageFrame,
  BoltSignature,
  chunkMessage,
  decodeBoltMessage,
  decodePackStream,
  encodePackStream,
  encodeVarint,
  PackStreamFloat,
  PackStreamReader,
  PackStreamStruct,
  type PackStreamValue,
  readMessageMapEntries,
  rewriteRouteSuccess,
  rewriteRoutingProcedureRecord,
} from '../../../src/proxy/bolt/index.ts';
import { dechunkAll, fuzzBudget, map, splitAt } from './bolt-test-helpers.ts';

const TOTAL_INPUTS = fuzzBudget(120_000);
const SEED = process.env.BOLT_FUZZ_SEED === undefined ? undefined : Number(process.env.BOLT_FUZZ_SEED);
/** Shares of the budget per property; the most valuable properties (mutations) get the most. */
const SHARES = {
  dechunkRoundTrip: 0.14,
  packStreamRoundTrip: 0.14,
  randomBytes: 0.2,
  mutatedConversations: 0.24,
  handshakeRoundTrip: 0.1,
  mutatedHandshakes: 0.1,
  routingRewrite: 0.08,
} as const;
/** One input taking this long means super-linear work somewhere: as good as a hang. */
const MAX_MILLISECONDS_PER_INPUT = 2000;

let inputsRun = 0;
const startedAt = performance.now();

/**
 * Runs a property over its share of the budget. A predicate that tests several inputs per generated
 * case (mutants of one conversation) returns how many, and fewer cases are generated accordingly.
 */
function check<Ts extends [unknown, ...unknown[]]>(
  share: keyof typeof SHARES,
  arbitraries: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> },
  predicate: (...inputs: Ts) => unknown,
  inputsPerCase = 1,
): void {
  const property = fc.property(...arbitraries, (...inputs: Ts) => {
    const inputStartedAt = performance.now();
    const tested = predicate(...inputs);
    inputsRun += typeof tested === 'number' ? tested : 1;
    const elapsed = performance.now() - inputStartedAt;
    assert.ok(elapsed < inputsPerCase * MAX_MILLISECONDS_PER_INPUT, `one case took ${elapsed.toFixed(0)} ms`);
  });
  const numRuns = Math.max(1, Math.ceil((TOTAL_INPUTS * SHARES[share]) / inputsPerCase));
  fc.assert(property, { numRuns, ...(SEED === undefined ? {} : { seed: SEED }) });
}

/** Runs code on hostile input: it may succeed or throw the codec's typed errors, nothing else. */
function onlyCodecErrors(run: () => void): void {
  try {
    run();
  } catch (error) {
    if (!(error instanceof BoltCodecError)) throw error;
  }
}

// ---------------------------------------------------------------------------------------------------
// Arbitraries

const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });

/** Any code point but lone surrogates (they cannot survive UTF-8); cheaper to generate than unit 'binary'. */
function unicodeString(maxLength: number): fc.Arbitrary<string> {
  return fc
    .array(fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0, max: 0x10ffff })), { maxLength })
    .map((codePoints) =>
      String.fromCodePoint(
        ...codePoints.map((codePoint) => (codePoint >= 0xd800 && codePoint <= 0xdfff ? 0xfffd : codePoint)),
      ),
    );
}

const scalar: fc.Arbitrary<PackStreamValue> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -200, max: 200 }),
  fc.integer(),
  fc.maxSafeInteger(),
  int64,
  fc.double().map((value) => new PackStreamFloat(value)),
  unicodeString(20),
  unicodeString(300),
  fc.uint8Array({ maxLength: 40 }),
);

const { value: packStreamValue } = fc.letrec<{ value: PackStreamValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', maxDepth: 5 },
    { arbitrary: scalar, weight: 4 },
    { arbitrary: fc.array(tie('value'), { maxLength: 18 }), weight: 1 },
    {
      arbitrary: fc
        .array(fc.tuple(unicodeString(10), tie('value')), { maxLength: 18 })
        .map((entries) => new Map(entries)),
      weight: 1,
    },
    {
      arbitrary: fc
        .tuple(fc.integer({ min: 0, max: 255 }), fc.array(tie('value'), { maxLength: 15 }))
        .map(([signature, fields]) => new PackStreamStruct(signature, fields)),
      weight: 1,
    },
  ),
}));

/** What a value decodes back to: 64-bit integers within 2^53 come back as numbers. */
function normalized(value: PackStreamValue): PackStreamValue {
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }
  if (Array.isArray(value)) return value.map(normalized);
  if (value instanceof Map) return new Map([...value].map(([key, item]) => [key, normalized(item)]));
  if (value instanceof PackStreamStruct) return new PackStreamStruct(value.signature, value.fields.map(normalized));
  return value;
}

interface RawMessage {
  readonly marker: number;
  readonly signature: number;
  readonly body: Uint8Array;
  readonly chunkSize: number;
  readonly noopsBefore: number;
}

const rawMessage: fc.Arbitrary<RawMessage> = fc.record({
  marker: fc.integer({ min: 0xb0, max: 0xbf }),
  signature: fc.integer({ min: 0, max: 255 }),
  body: fc.oneof(
    { arbitrary: fc.uint8Array({ maxLength: 300 }), weight: 200 },
    { arbitrary: fc.integer({ min: 65_000, max: 140_000 }).map((size) => new Uint8Array(size).fill(7)), weight: 1 },
  ),
  chunkSize: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 0xffff })),
  noopsBefore: fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, fc.integer({ min: 1, max: 3 })),
});

const cutPoints = fc.array(fc.nat(), { maxLength: 12 });

/** Realistic Bolt messages (signatures of both directions) with arbitrary PackStream fields. */
const boltMessage = fc
  .tuple(fc.constantFrom(...Object.values(BoltSignature)), fc.array(packStreamValue, { maxLength: 3 }))
  .map(([signature, fields]) => encodePackStream(new PackStreamStruct(signature, fields)));

/** Messages the tracker reads metadata from, so that mutations hit its decoding paths. */
const trackedMessage = fc.oneof(
  fc.constant(encodePackStream(new PackStreamStruct(BoltSignature.RUN, ['RETURN 1', map({}), map({ db: 'x' })]))),
  fc.constant(
    encodePackStream(
      new PackStreamStruct(BoltSignature.RUN, ['CALL dbms.routing.getRoutingTable($c)', map({}), map({})]),
    ),
  ),
  fc.constant(encodePackStream(new PackStreamStruct(BoltSignature.PULL, [map({ n: -1, qid: 0 })]))),
  fc.constant(encodePackStream(new PackStreamStruct(BoltSignature.BEGIN, [map({ mode: 'r' })]))),
  fc.constant(encodePackStream(new PackStreamStruct(BoltSignature.HELLO, [map({ user_agent: 'neo4j-go/5.0' })]))),
  fc.constant(encodePackStream(new PackStreamStruct(BoltSignature.ROUTE, [map({}), [], map({ db: 'd' })]))),
  fc.constant(encodePackStream(new PackStreamStruct(BoltSignature.SUCCESS, [map({ has_more: false, qid: 0 })]))),
  fc.constant(encodePackStream(new PackStreamStruct(BoltSignature.SUCCESS, [map({ fields: ['ttl', 'servers'] })]))),
  fc.constant(encodePackStream(new PackStreamStruct(BoltSignature.FAILURE, [map({ gql_status: '42001' })]))),
  fc.constant(encodePackStream(new PackStreamStruct(BoltSignature.RECORD, [[1, [map({ addresses: ['a'] })]]]))),
  boltMessage,
);

type Mutation = readonly ['flip' | 'insert' | 'delete' | 'truncate', number, number];

const mutations = fc.array(
  fc.tuple(
    fc.constantFrom('flip', 'insert', 'delete', 'truncate' as const),
    fc.nat(),
    fc.integer({ min: 0, max: 255 }),
  ),
  { minLength: 1, maxLength: 6 },
);

function mutate(bytes: Uint8Array, steps: readonly Mutation[]): Buffer {
  const mutable = [...bytes];
  for (const [kind, rawPosition, byte] of steps) {
    const position = mutable.length === 0 ? 0 : rawPosition % mutable.length;
    if (kind === 'flip' && mutable.length > 0) mutable[position] = byte;
    else if (kind === 'insert') mutable.splice(position, 0, byte);
    else if (kind === 'delete') mutable.splice(position, 1);
    else if (kind === 'truncate') mutable.length = position;
  }
  return Buffer.from(mutable);
}

/** Random bytes rich in PackStream markers and small sizes, so they get past the first byte more often. */
const INTERESTING_BYTES = [
  0xb1, 0xb3, 0x70, 0x71, 0x10, 0xa1, 0xa2, 0x91, 0x81, 0xc0, 0xc1, 0xcb, 0xd0, 0xd4, 0xd8, 0x00,
];
const markerRichBytes = fc
  .uint8Array({ maxLength: 120 })
  .map((bytes) =>
    Buffer.from(
      bytes.map((byte) => (byte & 1 ? (INTERESTING_BYTES[(byte >> 1) % INTERESTING_BYTES.length] ?? 0) : byte)),
    ),
  );

// ---------------------------------------------------------------------------------------------------

describe('fuzz: dechunking', () => {
  it('arbitrary messages, chunked arbitrarily and read in arbitrary pieces, dechunk to the same messages', () => {
    check(
      'dechunkRoundTrip',
      [fc.array(rawMessage, { maxLength: 12 }), cutPoints, fc.uint8Array({ maxLength: 8 }), fc.nat(3)],
      (messages, cuts, keptSignatures, trailingNoops) => {
        const kept = new Set(keptSignatures);
        const pieces: Buffer[] = [];
        const expected: Omit<BoltMessageFrame, 'payloadDropped'>[] = [];
        let offset = 0;
        for (const message of messages) {
          const payload = Buffer.concat([Buffer.from([message.marker, message.signature]), message.body]);
          const noops = Buffer.alloc(2 * message.noopsBefore);
          const wire = chunkMessage(payload, message.chunkSize);
          pieces.push(noops, wire);
          offset += noops.length;
          expected.push({
            signature: message.signature,
            fieldCount: message.marker & 0x0f,
            payload: kept.has(message.signature) ? payload : null,
            size: payload.length,
            wireStart: offset,
            wireEnd: offset + wire.length,
          });
          offset += wire.length;
        }
        pieces.push(Buffer.alloc(2 * trailingNoops));
        const stream = Buffer.concat(pieces);
        const frames: BoltMessageFrame[] = [];
        const dechunker = new BoltDechunker({
          onMessage: (frame) => frames.push(frame),
          keepPayload: (signature) => kept.has(signature),
        });
        for (const read of splitAt(
          stream,
          cuts.map((cut) => cut % (stream.length + 1)),
        ))
          dechunker.feed(read);
        assert.deepEqual(
          frames.map(({ payloadDropped: _, ...frame }) => frame),
          expected,
        );
        assert.equal(dechunker.pendingMessageStart, null);
        assert.equal(
          dechunker.noopCount,
          messages.reduce((sum, message) => sum + message.noopsBefore, trailingNoops),
        );
      },
    );
  });
});

describe('fuzz: PackStream', () => {
  it('decode(encode(value)) is the value', () => {
    check('packStreamRoundTrip', [packStreamValue], (value) => {
      const encoded = encodePackStream(value);
      assert.deepEqual(decodePackStream(encoded, { preserveFloats: true, maxDepth: 64 }), normalized(value));
      const reader = new PackStreamReader(encoded);
      reader.skipValue();
      assert.equal(reader.remaining, 0, 'skipping steps over exactly one value');
    });
  });

  it('random bytes fail only with typed errors, in every decoder and parser', () => {
    check(
      'randomBytes',
      [fc.oneof(markerRichBytes, fc.uint8Array({ maxLength: 64 }).map(Buffer.from)), cutPoints],
      (bytes, cuts) => {
        onlyCodecErrors(() => decodePackStream(bytes));
        onlyCodecErrors(() => decodeBoltMessage(bytes, { preserveFloats: true }));
        onlyCodecErrors(() => readMessageMapEntries(bytes, 0, new Set(['db', 'has_more'])));
        onlyCodecErrors(() => readMessageMapEntries(bytes, 2, new Set(['db'])));
        onlyCodecErrors(() => new PackStreamReader(bytes).skipValue());
        onlyCodecErrors(() => rewriteRouteSuccess(bytes, 'proxy:7687'));
        onlyCodecErrors(() => rewriteRoutingProcedureRecord(bytes, 'proxy:7687'));
        onlyCodecErrors(() => dechunkAll(splitAt(bytes, cuts), { keepPayload: () => true, maxPayloadBytes: 64 }));
        onlyCodecErrors(() => {
          const handshake = new BoltHandshake();
          for (const read of splitAt(bytes, cuts)) handshake.feedClient(read);
        });
        onlyCodecErrors(() => {
          const handshake = new BoltHandshake();
          for (const read of splitAt(bytes, cuts)) handshake.feedServer(read);
        });
      },
    );
  });
});

/** Feeds both directions of a conversation, interleaved read by read, through dechunkers, tracker and decoder. */
function runConversation(client: Buffer, server: Buffer, cuts: readonly number[]): void {
  let now = 0;
  const tracker = new BoltConversationTracker({
    onEvent: (event) => {
      if ('durationSeconds' in event) assert.ok(event.durationSeconds >= 0);
    },
    maxPendingRequests: 50,
  });
  const clientDechunker = new BoltDechunker({
    keepPayload: tracker.keepClientPayload,
    maxPayloadBytes: 4096,
    onMessage: (frame) => {
      onlyCodecErrors(() => tracker.clientMessage(frame, now++));
      if (frame.payload !== null) onlyCodecErrors(() => decodeBoltMessage(frame.payload ?? Buffer.alloc(0)));
    },
  });
  const serverDechunker = new BoltDechunker({
    keepPayload: tracker.keepServerPayload,
    maxPayloadBytes: 4096,
    onMessage: (frame) => {
      const routing = tracker.serverMessage(frame, now++);
      if (routing?.kind === 'route-success' && frame.payload !== null) {
        onlyCodecErrors(() => rewriteRouteSuccess(frame.payload ?? Buffer.alloc(0), 'proxy:7687'));
      }
    },
  });
  const clientReads = splitAt(
    client,
    cuts.map((cut) => cut % (client.length + 1)),
  );
  const serverReads = splitAt(
    server,
    cuts.map((cut) => cut % (server.length + 1)),
  );
  for (let index = 0; index < Math.max(clientReads.length, serverReads.length); index++) {
    const clientRead = clientReads[index];
    const serverRead = serverReads[index];
    if (clientRead !== undefined) onlyCodecErrors(() => clientDechunker.feed(clientRead));
    if (serverRead !== undefined) onlyCodecErrors(() => serverDechunker.feed(serverRead));
  }
  tracker.close(now);
  assert.equal(tracker.openQueryCount, 0);
  tracker.takeMessageCounts();
}

const MUTANTS_PER_CONVERSATION = 4;

describe('fuzz: conversations', () => {
  it('mutated conversations never throw anything but typed errors through dechunker, tracker and decoder', () => {
    check(
      'mutatedConversations',
      [
        fc.array(trackedMessage, { maxLength: 10 }),
        fc.array(trackedMessage, { maxLength: 10 }),
        fc.array(mutations, { minLength: MUTANTS_PER_CONVERSATION, maxLength: MUTANTS_PER_CONVERSATION }),
        cutPoints,
      ],
      (clientMessages, serverMessages, mutationSets, cuts) => {
        const clientWire = Buffer.concat(clientMessages.map((payload) => chunkMessage(payload, 7)));
        const serverWire = Buffer.concat(serverMessages.map((payload) => chunkMessage(payload)));
        // Mutate each direction in turn; the other stays valid, as when one peer misbehaves.
        mutationSets.forEach((steps, index) => {
          if (index % 2 === 0) runConversation(mutate(clientWire, steps), serverWire, cuts);
          else runConversation(clientWire, mutate(serverWire, steps), cuts);
        });
        return mutationSets.length;
      },
      MUTANTS_PER_CONVERSATION,
    );
  });
});

describe('fuzz: handshake', () => {
  const versionRange = fc
    .tuple(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 9 }), fc.integer({ min: 1, max: 6 }))
    .map(([range, minor, major]) => Buffer.from([0, Math.min(range, minor), minor, major]));
  const offer = fc.oneof(
    fc.constant(Buffer.from([0, 0, 0, 0])),
    fc.constant(Buffer.from([0, 0, 1, 0xff])),
    versionRange,
  );
  const exactVersion = fc
    .tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 1, max: 6 }))
    .map(([minor, major]) => ({ minor, major }));
  const capabilities = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });

  it('any valid negotiation, split anywhere, yields the same version and leftovers', () => {
    check(
      'handshakeRoundTrip',
      [
        fc.array(offer, { minLength: 4, maxLength: 4 }),
        fc.oneof(
          fc.record({
            kind: fc.constant('manifest' as const),
            ranges: fc.array(versionRange, { maxLength: 6 }),
            capabilities,
          }),
          fc.record({ kind: fc.constant('fixed' as const), version: exactVersion }),
          fc.constant({ kind: 'none' as const }),
        ),
        exactVersion,
        capabilities,
        fc.uint8Array({ maxLength: 40 }),
        cutPoints,
      ],
      (offers, answer, chosen, chosenCapabilities, trailing, cuts) => {
        const offersManifest = offers.some((bytes) => bytes[3] === 0xff);
        const manifest = answer.kind === 'manifest' && offersManifest;
        const clientOffers = Buffer.concat([Buffer.from([0x60, 0x60, 0xb0, 0x17]), ...offers]);
        const serverAnswer =
          answer.kind === 'manifest'
            ? Buffer.concat([
                Buffer.from([0, 0, 1, 0xff]),
                encodeVarint(BigInt(answer.ranges.length)),
                ...answer.ranges,
                encodeVarint(answer.capabilities),
              ])
            : answer.kind === 'fixed'
              ? Buffer.from([0, 0, answer.version.minor, answer.version.major])
              : Buffer.alloc(4);
        const clientRest = Buffer.concat([
          manifest ? Buffer.from([0, 0, chosen.minor, chosen.major]) : Buffer.alloc(0),
          manifest ? encodeVarint(chosenCapabilities) : Buffer.alloc(0),
          trailing,
        ]);
        if (answer.kind === 'manifest' && !offersManifest) return;
        const handshake = new BoltHandshake();
        const clientLeftovers: Buffer[] = [];
        const feedClient = (bytes: Buffer) => {
          for (const read of splitAt(
            bytes,
            cuts.map((cut) => cut % (bytes.length + 1)),
          )) {
            const progress = handshake.feedClient(read);
            if (progress.state === 'complete') clientLeftovers.push(progress.leftover);
          }
        };
        feedClient(clientOffers);
        for (const read of splitAt(
          serverAnswer,
          cuts.map((cut) => cut % (serverAnswer.length + 1)),
        )) {
          const progress = handshake.feedServer(read);
          if (progress.state !== 'incomplete') assert.equal(progress.leftover.length, 0);
        }
        feedClient(clientRest);
        assert.ok(handshake.clientComplete && handshake.serverComplete);
        assert.deepEqual(Buffer.concat(clientLeftovers), Buffer.from(trailing));
        if (answer.kind === 'none') {
          assert.equal(handshake.outcome, 'no-match');
        } else if (manifest) {
          assert.deepEqual(handshake.negotiatedVersion, chosen);
          assert.equal(handshake.clientCapabilities, chosenCapabilities);
          assert.equal(handshake.serverCapabilities, answer.capabilities);
        } else if (answer.kind === 'fixed') {
          assert.deepEqual(handshake.negotiatedVersion, answer.version);
        }
      },
    );
  });

  it('mutated handshakes fail only with typed errors', () => {
    check(
      'mutatedHandshakes',
      [
        fc.array(offer, { minLength: 4, maxLength: 4 }),
        fc.uint8Array({ maxLength: 30 }),
        fc.array(mutations, { minLength: MUTANTS_PER_CONVERSATION, maxLength: MUTANTS_PER_CONVERSATION }),
        cutPoints,
      ],
      (offers, serverBytes, mutationSets, cuts) => {
        const validClient = Buffer.concat([Buffer.from([0x60, 0x60, 0xb0, 0x17]), ...offers, serverBytes]);
        const validServer = Buffer.concat([Buffer.from([0, 0, 1, 0xff]), serverBytes]);
        for (const steps of mutationSets) {
          const client = mutate(validClient, steps);
          const server = mutate(validServer, steps);
          const handshake = new BoltHandshake();
          onlyCodecErrors(() => {
            for (const read of splitAt(client, cuts)) handshake.feedClient(read);
          });
          onlyCodecErrors(() => {
            for (const read of splitAt(server, cuts)) handshake.feedServer(read);
          });
          onlyCodecErrors(() => handshake.feedClient(serverBytes));
        }
        return mutationSets.length;
      },
      MUTANTS_PER_CONVERSATION,
    );
  });
});

describe('fuzz: routing rewrite', () => {
  const address = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 30 });
  const role = fc.constantFrom('ROUTE', 'READ', 'WRITE', 'OTHER');
  const servers = fc.array(
    fc
      .tuple(fc.array(address, { maxLength: 5 }), role)
      .map(([addresses, serverRole]) => map({ addresses, role: serverRole })),
    { maxLength: 6 },
  );

  it('every address becomes the advertised one, once per role, and roles stay as they were', () => {
    check('routingRewrite', [servers, fc.nat(), address, fc.boolean()], (serverList, ttl, advertised, viaRoute) => {
      const payload = viaRoute
        ? encodePackStream(
            new PackStreamStruct(BoltSignature.SUCCESS, [map({ rt: map({ ttl, servers: serverList }) })]),
          )
        : encodePackStream(new PackStreamStruct(BoltSignature.RECORD, [[ttl, serverList]]));
      const wire = viaRoute
        ? rewriteRouteSuccess(payload, advertised)
        : rewriteRoutingProcedureRecord(payload, advertised, ['ttl', 'servers']);
      assert.ok(wire !== null);
      const [frame] = dechunkAll([wire], { keepPayload: () => true });
      const decoded = decodeBoltMessage(frame?.payload ?? Buffer.alloc(0)).fields[0];
      const table = viaRoute && decoded instanceof Map ? decoded.get('rt') : null;
      const rewritten = viaRoute
        ? table instanceof Map
          ? table.get('servers')
          : null
        : Array.isArray(decoded)
          ? decoded[1]
          : null;
      assert.ok(Array.isArray(rewritten));
      const rolesBefore = [...new Set(serverList.map((entry) => entry.get('role')))];
      assert.deepEqual(
        rewritten.map((entry) => (entry instanceof Map ? entry.get('role') : null)),
        rolesBefore,
      );
      for (const entry of rewritten) {
        assert.ok(entry instanceof Map);
        const hadAddresses = serverList.some(
          (original) =>
            original.get('role') === entry.get('role') && (original.get('addresses') as string[]).length > 0,
        );
        assert.deepEqual(entry.get('addresses'), hadAddresses ? [advertised] : []);
      }
    });
  });
});

after(() => {
  const seconds = (performance.now() - startedAt) / 1000;
  console.log(`# bolt fuzz: ${inputsRun} inputs in ${seconds.toFixed(1)} s (budget ${TOTAL_INPUTS})`);
});
