import { readFileSync } from 'node:fs';

/** Read from package.json at run time: the same relative path holds from src/server and dist/server. */
export const SIDECAR_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
