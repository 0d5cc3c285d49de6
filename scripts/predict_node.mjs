// The parity gate's WebAssembly runtime: `node scripts/predict_node.mjs PKG_DIR MODEL.skedge`
// reads {"text": ...} lines (records {column: ...} for a DataFrame model) on stdin and prints, per line, what `skedge predict --format jsonl`
// prints — computed by the shipped npm package instead of the native CLI.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join, resolve } from 'node:path';

const [pkgDir, artifact, ...flags] = process.argv.slice(2);
const options = {};
for (let i = 0; i < flags.length; i += 2) {
  // --public-key FILE / --decryption-key FILE, as the CLI takes them.
  const key = { '--public-key': 'publicKey', '--decryption-key': 'decryptionKey' }[flags[i]];
  if (key) options[key] = readFileSync(flags[i + 1], 'utf8').trim();
}
const { Model } = await import(pathToFileURL(join(resolve(pkgDir), 'node.mjs')).href);
const model = Model.fromBytes(readFileSync(artifact), options);
const lines = readFileSync(0, 'utf8').split('\n');
if (lines.at(-1) === '') lines.pop();
const out = [];
let failed = false;
// A model fitted on a DataFrame column reads each line as its record {column: text}, as the CLI does.
const column = model.info().inputColumn;
for (const line of lines) {
  try {
    const input = JSON.parse(line);
    const { label, decision, proba } = model.predict(column === null ? input.text : input);
    out.push(JSON.stringify({ label, decision, proba }));
  } catch (err) {
    failed = true;
    out.push(JSON.stringify({ error: { code: err.code ?? 'INVALID_INPUT', message: String(err.message) } }));
  }
}
process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
process.exitCode = failed ? 1 : 0;
