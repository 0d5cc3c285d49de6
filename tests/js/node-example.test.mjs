// The Node example (examples/node/predict.mjs) against the installed package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadCases } from './lib/cases.mjs';

const script = fileURLToPath(new URL('./examples/node/predict.mjs', import.meta.url));

test('examples/node/predict.mjs prints the labels scikit-learn gives', () => {
  const c = loadCases().find((x) => x.name === 'word_tfidf_lr_binary') ?? loadCases()[0];
  const sample = c.expected.slice(0, 5);
  const out = execFileSync(process.execPath, [script, c.artifact, ...sample.map((e) => e.text)], { encoding: 'utf8' });
  const lines = out.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.label), sample.map((e) => e.label));
  assert.ok(lines.every((l) => Array.isArray(l.top)));
});

test('examples/node/predict.mjs reports a corrupt artifact by code', () => {
  const r = spawnSync(process.execPath, [script, script, 'x'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /SkedgeError ARTIFACT_CORRUPT/);
});
