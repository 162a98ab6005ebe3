/**
 * A freshly started Neo4j plans its first system-database queries slowly (seconds on a busy CI
 * machine); the census's 5 s probe budget is for a warm server, so tests run those queries once first.
 */
import neo4j from 'neo4j-driver';

export async function warmUpCensusQueries(server: { uri: string; username: string; password: string }): Promise<void> {
  const driver = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), {
    logging: { level: 'error', logger: () => {} },
  });
  try {
    for (const query of ['SHOW CURRENT USER', 'CALL dbms.listConnections()', 'SHOW TRANSACTIONS']) {
      await driver.executeQuery(query, {}, { database: 'system' });
    }
  } finally {
    await driver.close();
  }
}
