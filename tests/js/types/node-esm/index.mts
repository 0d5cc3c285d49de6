// A Node-only ESM project: no DOM types, only @types/node.
import { readFileSync } from 'node:fs';
import init, { Experiment, Model, SkedgeError, initSync } from 'skedge';
import type {
  Columnar, Explanation, FollowOptions, LoadOptions, Prediction, PredictBatchOptions, Served, SkedgeErrorCode, TextInput,
} from 'skedge';
import { Model as Lite } from 'skedge/lite';

await init();
initSync(); // Node ignores its argument: none needed
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
// Input arrays are only read: `readonly` and `as const` ones are taken, by a model and a
// follower alike, with the options as a `PredictBatchOptions` variable too.
const batchOptions: PredictBatchOptions = { columnar: true };
const constTexts = ['a', 'b'] as const;
const readonlyTexts: readonly TextInput[] = Object.freeze(['a', { review: 'b' }]);
model.predictBatch(constTexts) satisfies Prediction[];
model.predictBatch(readonlyTexts, { columnar: true }) satisfies Columnar;
model.predictBatch(readonlyTexts, batchOptions) satisfies Prediction[] | Columnar;
// `onError` gets an Error (what `onUpdate` throws that is not one is wrapped); a handler taking
// `unknown` is fine too.
const followOptions: FollowOptions = {
  publicKey: ['ab'.repeat(32)] as const,
  intervalSeconds: 30,
  onUpdate: () => {
    throw 'not an Error';
  },
  onError: (error) => console.log(error satisfies Error, error.message, error.cause),
};
const follower = await Model.follow('https://example.invalid/pointers/m/production.json', followOptions);
follower.predictBatch(constTexts, { columnar: false }) satisfies Prediction[];
follower.predictBatch(readonlyTexts, { columnar: true }) satisfies Columnar;
follower.predictBatch(readonlyTexts, batchOptions) satisfies Prediction[] | Columnar;
await Model.follow('https://example.invalid/pointers/m/production.json', { onError: (error: unknown) => console.log(error) });
Model.load(new Uint8Array(0), { publicKey: Object.freeze(['ab'.repeat(32)]) });
model[Symbol.dispose]();
model.free();
console.log(p, e, loaded);
