// The checks a JS runtime other than Node runs against the installed package (deno/run.mjs,
// bun/run.mjs): predicts every text of every case given ({ cases: [{ name, artifact, texts }], url,
// signatures }), the error paths, Model.load from `url`, and the signatures' verdicts
// (lib/verdicts.mjs), and returns one JSON-able document for lib/runtimes.mjs to compare with
// scikit-learn's outputs. Imports nothing but verdicts.mjs: it runs inside the runtime under test.
import { verdictsIn } from './verdicts.mjs';

/** `read(path)`: the runtime's own way to read a file's bytes. */
export async function runChecks(Model, input, read, resolved) {
  const out = { resolved, predictions: {}, columnar: {}, codes: {} };
  for (const c of input.cases) {
    const model = Model.fromBytes(read(c.artifact));
    out.predictions[c.name] = model.predictBatch(c.texts);
    const columnar = model.predictBatch(c.texts, { columnar: true });
    const types = [columnar.labelIndex, columnar.decision, columnar.proba].map((v) => (v === null ? 'null' : v.constructor.name));
    out.columnar[c.name] = { ...columnar, labelIndex: [...columnar.labelIndex], decision: [...columnar.decision], proba: columnar.proba && [...columnar.proba], types };
    model.free();
  }

  const codeOf = async (fn) => {
    try {
      await fn();
      return 'no error';
    } catch (e) {
      return e instanceof Error && e.name === 'SkedgeError' ? e.code : `not a SkedgeError: ${e}`;
    }
  };
  const good = new Uint8Array(read(input.cases[0].artifact)); // a copy: a Buffer's slice() is a view
  const corrupt = good.slice();
  corrupt[corrupt.length - 3] ^= 0x55;
  const future = good.slice();
  future[8] = 42;
  const model = Model.fromBytes(good);
  const { integrity } = model.info();
  out.codes.corrupt = await codeOf(() => Model.fromBytes(corrupt));
  out.codes.version = await codeOf(() => Model.fromBytes(future));
  out.codes.integrity = await codeOf(() => Model.fromBytes(good, { integrity: `sha256-${btoa('x'.repeat(32))}` }));
  out.codes.integrityOk = await codeOf(() => Model.fromBytes(good, { integrity }));
  out.codes.notString = await codeOf(() => model.predict(12));
  out.codes.tooLarge = await codeOf(() => model.predict('a'.repeat(16 * 1024 * 1024 + 1)));
  out.codes.tenMegabytes = await codeOf(() => model.predict('good food. '.repeat(1e6)));
  if (input.url) {
    const progress = [];
    const loaded = await Model.load(input.url, { integrity, onProgress: (p) => progress.push(p.loaded) });
    out.load = { sha256: loaded.info().sha256, progress: progress.length, last: progress.at(-1) };
    out.codes.loadIntegrity = await codeOf(() => Model.load(input.url, { integrity: `sha256-${btoa('y'.repeat(32))}` }));
  }
  if (input.signatures) out.verdicts = await verdictsIn(Model, input.signatures);
  return out;
}
