// The workerd cold-start bench Worker (scripts/bench_node.mjs cold-workerd): like a deployed
// Worker, the package initialises at start-up (the .wasm is a CompiledWasm module) and the model,
// a Data module, is loaded lazily inside the first request, which then predicts.
// `./skedge.js` is the package's `workerd` entry (full or lite), named so by the runner's config.
import { Model } from './skedge.js';
import artifact from './model.skedge';

let model = null;

export default {
  async fetch(request) {
    const text = new URL(request.url).searchParams.get('text') ?? 'a good movie';
    const loaded = model === null;
    if (loaded) model = Model.fromBytes(new Uint8Array(artifact));
    return Response.json({ loaded, prediction: model.predict(text) });
  },
};
