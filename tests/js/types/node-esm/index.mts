// A Node-only ESM project: no DOM types, only @types/node.
import { readFileSync } from 'node:fs';
import init, { Experiment, Model, SkedgeError } from 'skedge';
import type { Explanation, LoadOptions, Prediction, Served, SkedgeErrorCode } from 'skedge';
import { Model as Lite } from 'skedge/lite';

await init();
const model: Model = Model.fromBytes(readFileSync('model.skedge'), { integrity: 'sha256-x' });
const p: Prediction = model.predict('text');
const e: Explanation = model.explain('text', 3);
const options: LoadOptions = { onProgress: ({ loaded, total }) => console.log(loaded, total), init: { headers: { a: 'b' } }, maxBytes: 1 << 27 };
const loaded: Promise<Model> = Model.load(new URL('https://example.com/m.skedge'), options);
Lite.fromBytes(new Uint8Array(0)).predictBatch(['a'], { columnar: true }).labelIndex satisfies Uint32Array;
try {
  model.predict('x');
} catch (err) {
  if (err instanceof SkedgeError) {
    const code: SkedgeErrorCode = err.code;
    console.log(code, err.index, err.message);
  }
}
// An experiment takes what Model.predict takes: a text or a record of the arms' column.
const exp = new Experiment(model, model);
const served: Served = exp.predict({ review: 'text' }, { key: 'user' });
exp.predict('text').arm satisfies 'champion' | 'challenger';
exp.flush(new URL('https://collector.example/v1/snapshots')).then((r) => r.lastError);
console.log(served);
model[Symbol.dispose]();
model.free();
console.log(p, e, loaded);
