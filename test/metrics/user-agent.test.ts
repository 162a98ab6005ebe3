import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KNOWN_DRIVER_NAMES, userAgentFamily } from '../../src/metrics/index.ts';

describe('userAgentFamily', () => {
  const cases: [string | null, string][] = [
    ['neo4j-python/5.28.1 Python/3.11.4-final-0 (linux)', 'neo4j-python/5'],
    ['neo4j-javascript/6.3.0', 'neo4j-javascript/6'],
    ['neo4j-java/5.27.0-8c7d7a5d', 'neo4j-java/5'],
    ['neo4j-go/5.26.0', 'neo4j-go/5'],
    ['neo4j-dotnet/5.28', 'neo4j-dotnet/5'],
    ['neo4j-cypher-shell/v5.26.0', 'neo4j-cypher-shell/5'],
    ['Neo4j-Python/4.4.12', 'neo4j-python/4'],
    ['neo4j-java/dev', 'neo4j-java'],
    ['neo4j-java', 'neo4j-java'],
    ['neo4j-java/12345678', 'neo4j-java'],
    ['neo4j-javascripts/5.0.0', 'other'],
    ['my-app/1.0 neo4j-python/5.0', 'other'],
    ['', 'other'],
    [null, 'other'],
  ];
  for (const [agent, family] of cases) {
    it(`${JSON.stringify(agent)} → ${family}`, () => assert.equal(userAgentFamily(agent), family));
  }
});

describe('userAgentFamily on any input', () => {
  it('is always a known driver name, with or without a major version, or other', () => {
    const families = new RegExp(`^(?:other|(?:${KNOWN_DRIVER_NAMES.join('|')})(?:/\\d{1,3})?)$`);
    const agents = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.uint8Array().map((bytes) => Buffer.from(bytes).toString('latin1')),
      // Known names followed by anything, so the version branch is exercised too.
      fc.tuple(fc.constantFrom(...KNOWN_DRIVER_NAMES), fc.string()).map(([name, rest]) => `${name}${rest}`),
    );
    fc.assert(
      fc.property(agents, (agent) => {
        assert.match(userAgentFamily(agent), families);
      }),
      { numRuns: 2000 },
    );
  });
});
