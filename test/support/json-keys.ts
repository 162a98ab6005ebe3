/**
 * Duplicate keys in a JSON text. `JSON.parse` keeps the last of two equal keys without a word, so
 * a log line with two `level` fields parses fine and reads wrong: this scanner walks the text itself
 * and reports every object key that appears twice in the same object, with its path.
 */

/** Paths (`$.a.b`) of the keys that occur more than once in their object; throws on invalid JSON. */
export function duplicateJsonKeys(text: string): string[] {
  let at = 0;
  const duplicates: string[] = [];

  const fail = (what: string): never => {
    throw new Error(`invalid JSON at ${at}: ${what}`);
  };
  const skipSpace = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at]!)) at++;
  };
  const expect = (char: string) => {
    if (text[at] !== char) fail(`expected ${char}`);
    at++;
  };
  const readString = (): string => {
    const start = at;
    expect('"');
    while (at < text.length && text[at] !== '"') at += text[at] === '\\' ? 2 : 1;
    expect('"');
    return JSON.parse(text.slice(start, at)) as string;
  };
  const readValue = (path: string): void => {
    skipSpace();
    const char = text[at];
    if (char === '{') {
      at++;
      const seen = new Set<string>();
      skipSpace();
      if (text[at] === '}') {
        at++;
        return;
      }
      for (;;) {
        skipSpace();
        const key = readString();
        if (seen.has(key)) duplicates.push(`${path}.${key}`);
        seen.add(key);
        skipSpace();
        expect(':');
        readValue(`${path}.${key}`);
        skipSpace();
        if (text[at] === ',') {
          at++;
          continue;
        }
        expect('}');
        return;
      }
    }
    if (char === '[') {
      at++;
      skipSpace();
      if (text[at] === ']') {
        at++;
        return;
      }
      for (let index = 0; ; index++) {
        readValue(`${path}[${index}]`);
        skipSpace();
        if (text[at] === ',') {
          at++;
          continue;
        }
        expect(']');
        return;
      }
    }
    if (char === '"') {
      readString();
      return;
    }
    const literal = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(at));
    if (!literal) fail('expected a value');
    at += literal![0].length;
  };

  readValue('$');
  skipSpace();
  if (at !== text.length) fail('trailing text');
  return duplicates;
}
