/**
 * The database label of a query that named none. Neo4j runs it on the user's home database and names
 * that in the final SUCCESS, but a FAILURE names none; so the home database each user's successful
 * queries ran on is remembered (by the proxy for all its connections, by instrumentDriver per driver),
 * and a failing twin is listed under the same database. Bounded, oldest forgotten first; user names
 * only, never credentials, and never exported.
 */

/**
 * database label of a query that named no database and whose user's home database is not known yet
 * (their first query failed before any succeeded). Not a valid Neo4j database name, so never one.
 */
export const HOME_DATABASE_LABEL = '(home)';

const DEFAULT_MAX_USERS = 1024;

export class HomeDatabases {
  readonly #byUser = new Map<string, string>();
  readonly #maxUsers: number;

  constructor(maxUsers = DEFAULT_MAX_USERS) {
    this.#maxUsers = maxUsers;
  }

  get size(): number {
    return this.#byUser.size;
  }

  get(user: string): string | undefined {
    return this.#byUser.get(user);
  }

  /** The latest wins: a home database changed with ALTER USER shows from the next successful query on. */
  set(user: string, database: string): void {
    this.#byUser.delete(user);
    this.#byUser.set(user, database);
    if (this.#byUser.size <= this.#maxUsers) return;
    const oldest = this.#byUser.keys().next();
    if (oldest.done !== true) this.#byUser.delete(oldest.value);
  }
}
