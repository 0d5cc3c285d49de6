// A browser project whose lib predates esnext.disposable (no Symbol.dispose of its own).
import init, { initSync, Model, SkedgeError } from 'skedge';
import type { LoadProgress, Prediction } from 'skedge';

await init();
await init(new URL('skedge_bg.wasm', location.href));
await init(fetch('skedge_bg.wasm').then((r) => r.arrayBuffer()).then((b) => new WebAssembly.Module(b)));
initSync(new Uint8Array(0));
try {
  const model = await Model.load('model.skedge', {
    integrity: 'sha256-x',
    onProgress: (p: LoadProgress) => console.log(p.loaded, p.total ?? 'unknown'),
    init: { credentials: 'same-origin' },
    maxBytes: 128 * 1024 * 1024,
  });
  const p: Prediction = model.predict(document.title);
  model[Symbol.dispose]();
  console.log(p.label);
} catch (err) {
  if (err instanceof SkedgeError) console.log(err.code);
}
