// The workerd cold-start bench Worker (scripts/bench_node.mjs cold-workerd): like a deployed
// Worker, the package initialises at start-up (the .wasm is a CompiledWasm module) and the model,
// a Data module, is loaded lazily inside the first request, which then predicts. options.json
// (written by the runner) may pin a public key and choose `Model.load` over `Model.fromBytes`.
// `./skedge.js` is the package's `workerd` entry (full or lite), named so by the runner's config.
import { Model } from './skedge.js';
import artifact from './model.skedge';
import options from './options.json';

let model = null;

export default {
  async fetch(request) {
    // A request that only starts the isolate (newer workerds run the global scope on the first
    // request): bench_node.mjs's SKEDGE_WORKERD_START.
    if (new URL(request.url).pathname === '/start') return Response.json({ loaded: false });
    const text = new URL(request.url).searchParams.get('text') ?? 'a good movie';
    const loaded = model === null;
    if (loaded) {
      const bytes = new Uint8Array(artifact);
      const keys = options.publicKey ? { publicKey: options.publicKey } : undefined;
      model = options.via === 'load' ? await Model.load(bytes, keys) : Model.fromBytes(bytes, keys);
    }
    return Response.json({ loaded, prediction: model.predict(text) });
  },
};
