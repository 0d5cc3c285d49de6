// A current bundler project (Vite and the like): lib esnext + dom, `using` declarations.
import { Model, SkedgeError } from 'skedge';
import type { Columnar, Follower, Monitor, Pointer } from 'skedge';
import { Model as Lite, SkedgeError as LiteError } from 'skedge/lite';
// skedge/lite's runtime exports an Experiment that only throws FEATURE_UNAVAILABLE: its types
// leave it out, so using it fails to compile.
// @ts-expect-error
import { Experiment as LiteExperiment } from 'skedge/lite';
void LiteExperiment;

const bytes = new Uint8Array(await (await fetch('model.skedge')).arrayBuffer());
{
  using model = Model.fromBytes(bytes);
  const c: Columnar = model.predictBatch(['a'], { columnar: true });
  using monitor: Monitor = model.monitor({ sampleRate: 0.5 });
  console.log(c.width, monitor.seen);
}
{
  using follower: Follower = await Model.follow('https://example.invalid/pointers/m/production.json', {
    publicKey: 'ab'.repeat(32),
    intervalSeconds: 30,
    maxBytes: 64 * 1024 * 1024,
    onUpdate: (info, pointer: Pointer) => console.log(info.sha256, pointer.generation),
    onError: (e) => console.log(e.message),
  });
  console.log(follower.predict('x').label, follower.pointer.sha256, await follower.refresh());
  const r2 = { get: async (_key: string) => null };
  (await Model.follow({ bucket: r2, key: 'pointers/m/production.json' })).dispose();
}
{
  using lite = Lite.fromBytes(bytes.buffer);
  console.log(lite.predict('x').proba);
}
function codeOf(err: unknown): string | undefined {
  if (err instanceof SkedgeError || err instanceof LiteError) return err.code;
  return undefined;
}
console.log(codeOf(new Error('x')));
