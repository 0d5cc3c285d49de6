// Type-checked by `deno check` in deno.test.mjs: the package's TypeScript types (generated from
// src/wasm/ by wasm-bindgen) describe the API the tests exercise. Never run.
import init, { initSync, Model, SkedgeError } from 'skedge';
import type { Columnar, Explanation, Feature, Label, LoadProgress, ModelInfo, Prediction, SkedgeErrorCode } from 'skedge';
import { Model as Lite } from 'skedge/lite';

await init();
initSync(new Uint8Array(0));
const model: Model = Model.fromBytes(new Uint8Array(0));
Model.fromBytes(new ArrayBuffer(0), { integrity: 'sha256-…' });
const prediction: Prediction = model.predict('text');
const label: Label = prediction.label;
const proba: number[] | null = prediction.proba;
const batch: Prediction[] = model.predictBatch(['a', 'b']);
const columnar: Columnar = model.predictBatch(['a', 'b'], { columnar: true });
const index: Uint32Array = columnar.labelIndex;
const decision: Float64Array = columnar.decision;
const lite: Prediction[] = Lite.fromBytes(new Uint8Array(0)).predictBatch(['a']);
const fromCache: Promise<Model> = Model.load(new Response(new Uint8Array(0)));
const explanation: Explanation = model.explain('text', 3);
const feature: Feature = explanation.features[0];
const [start, end]: [number, number] = feature.spans[0];
const info: ModelInfo = model.info();
const loaded: Promise<Model> = Model.load('model.skedge', {
  integrity: info.integrity,
  onProgress: (p: LoadProgress) => console.log(p.loaded, p.total ?? 'unknown'),
});
const error = new Error() as SkedgeError;
const code: SkedgeErrorCode = error.code;
const unavailable: SkedgeErrorCode = 'FEATURE_UNAVAILABLE';
const caught: unknown = error;
const freed: SkedgeErrorCode | undefined = caught instanceof SkedgeError ? caught.code : undefined;
model.free();
model[Symbol.dispose]();
console.log(label, proba, batch, start, end, loaded, code, info.maxTextBytes, index, decision, lite, fromCache, unavailable, freed);
