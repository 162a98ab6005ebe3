/** docs/alerts.md has a runbook section for every alert, at the anchor its runbook_url points to. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../../scripts/neo4j/local-neo4j.ts';
import { ALERT_DEFINITIONS, renderRules } from '../../src/alerts/index.ts';
import { loadConfig } from '../../src/config/index.ts';

describe('docs/alerts.md', () => {
  const runbook = readFileSync(join(repoRoot, 'docs', 'alerts.md'), 'utf8');

  it('has a section with what it means, causes and what to do for every alert, at its runbook anchor', () => {
    const rules = renderRules(loadConfig({ env: {} }).alerts).groups[0]!.rules;
    // Every alert the sidecar defines is rendered (as warning and/or critical), so every one is checked below.
    const definitions = Object.values(ALERT_DEFINITIONS);
    assert.ok(definitions.length >= 8, `${definitions.length} alert definitions`);
    assert.deepEqual(
      [...new Set(rules.map((rule) => rule.alert))].sort(),
      definitions.map((definition) => `Neo4jPool${definition.nameSuffix}`).sort(),
    );
    const sections = runbook.match(/^<a id="[^"]+"><\/a>\n\n## Neo4jPool\w+$/gm) ?? [];
    assert.equal(sections.length, definitions.length, 'one runbook section per alert, none left over');
    for (const rule of rules) {
      const anchor = new URL(rule.annotations.runbook_url).hash.slice(1);
      const at = runbook.indexOf(`<a id="${anchor}"></a>\n\n## ${rule.alert}\n`);
      assert.ok(at >= 0, `a section for ${rule.alert} at #${anchor}`);
      const section = runbook.slice(at).split(/\n<a id=/)[0]!;
      for (const part of ['**What it means.**', '**Likely causes.**', '**What to do.**']) {
        assert.ok(section.includes(part), `${rule.alert}: ${part}`);
      }
    }
  });
});
