// skedge in Node: load an artifact from disk and classify texts given as arguments (or stdin lines).
//   node predict.mjs model.skedge "first text" "second text"
//   cat texts.txt | node predict.mjs model.skedge
import { readFileSync } from 'node:fs';
import { Model } from 'skedge';

const [path, ...args] = process.argv.slice(2);
if (!path) {
  console.error('usage: node predict.mjs MODEL.skedge [TEXT ...]  (texts from stdin when none)');
  process.exit(2);
}

let model;
try {
  model = Model.fromBytes(readFileSync(path));
} catch (e) {
  console.error(`${e.name} ${e.code}: ${e.message}`);
  process.exit(1);
}
const { name, version, classes } = model.info();
console.error(`loaded ${name || path} ${version} (classes: ${classes.join(', ')})`);

const texts = args.length ? args : readFileSync(0, 'utf8').split('\n').filter((l) => l.trim());
for (const text of texts) {
  const { label, proba, features } = model.explain(text, 3);
  const top = features.map((f) => `${f.term} (${f.contributions[0] >= 0 ? '+' : ''}${f.contributions[0].toFixed(3)})`);
  console.log(JSON.stringify({ text, label, proba, top }));
}
model.free();
