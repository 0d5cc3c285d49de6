// A test Worker for workerd.test.mjs: POST { artifact (base64), texts } → predictBatch in both
// forms, with the columnar typed arrays' constructor names (JSON carries them as arrays); POST
// /verdicts lib/signatures.mjs's cases → their verdicts with WebCrypto and with the wasm.
// `./skedge.js` is the installed package's `workerd` entry (full or lite), named so by the config.
import { Model } from './skedge.js';
import { verdictsIn } from './verdicts.js';

export default {
  async fetch(request) {
    if (new URL(request.url).pathname === '/verdicts') {
      return Response.json(await verdictsIn(Model, await request.json()));
    }
    const { artifact, texts } = await request.json();
    const model = Model.fromBytes(Uint8Array.from(atob(artifact), (ch) => ch.charCodeAt(0)));
    try {
      const c = model.predictBatch(texts, { columnar: true });
      const types = [c.labelIndex, c.decision, c.proba].map((v) => (v === null ? 'null' : v.constructor.name));
      const columnar = { ...c, labelIndex: [...c.labelIndex], decision: [...c.decision], proba: c.proba && [...c.proba] };
      return Response.json({ batch: model.predictBatch(texts), columnar, types });
    } finally {
      model.free();
    }
  },
};
