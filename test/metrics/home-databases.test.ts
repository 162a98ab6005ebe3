import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HomeDatabases } from '../../src/metrics/home-databases.ts';

describe('HomeDatabases', () => {
  it('keeps the latest home database per user', () => {
    const homes = new HomeDatabases();
    homes.set('alice', 'neo4j');
    homes.set('alice', 'movies');
    assert.equal(homes.get('alice'), 'movies');
    assert.equal(homes.get('bob'), undefined);
  });

  it('holds at most maxUsers, forgetting the one least recently learnt', () => {
    const homes = new HomeDatabases(3);
    for (const user of ['a', 'b', 'c']) homes.set(user, `${user}-db`);
    homes.set('a', 'a-db');
    homes.set('d', 'd-db');
    assert.equal(homes.size, 3);
    assert.equal(homes.get('b'), undefined, 'b was learnt longest ago');
    assert.deepEqual(
      ['a', 'c', 'd'].map((user) => homes.get(user)),
      ['a-db', 'c-db', 'd-db'],
    );
  });
});
