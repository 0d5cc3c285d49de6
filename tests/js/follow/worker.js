// Model.follow in workerd with an R2 binding (tests/js/follow.test.mjs, through miniflare): the
// pointer and blobs live in env.MODELS. Timers stop between requests in Workers, so the pointer is
// re-read by `refresh()` (here on `?refresh`; a real Worker calls it from ctx.waitUntil).
import { Model } from './skedge.js';

let follower;

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    try {
      follower ??= await Model.follow(
        { bucket: env.MODELS, key: 'fleet/pointers/m/production.json' },
        { publicKey: env.PUBLIC_KEY, intervalSeconds: 3600 },
      );
      let error = null;
      if (url.searchParams.has('refresh')) await follower.refresh().catch((e) => { error = e.code; });
      const p = follower.predict(url.searchParams.get('text') ?? '');
      return Response.json({ sha256: follower.info().sha256, generation: follower.pointer.generation, label: p.label, error });
    } catch (e) {
      return Response.json({ error: e.code ?? String(e) }, { status: 500 });
    }
  },
};
