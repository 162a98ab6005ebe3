/** A throwaway directory of small files, for tests of the scripts that read a source tree. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface FileTree {
  readonly root: string;
  /** Writes `text` at `path` (relative to root), creating folders as needed. */
  write(path: string, text: string): void;
  remove(): void;
}

export function fileTree(prefix: string): FileTree {
  const root = mkdtempSync(join(tmpdir(), `${prefix}-`));
  return {
    root,
    write(path, text) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    },
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}
