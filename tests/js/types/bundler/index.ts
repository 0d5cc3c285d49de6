// A current bundler project (Vite and the like): lib esnext + dom, `using` declarations.
import { Model, SkedgeError } from 'skedge';
import type { Columnar, Monitor } from 'skedge';
import { Model as Lite, SkedgeError as LiteError } from 'skedge/lite';

const bytes = new Uint8Array(await (await fetch('model.skedge')).arrayBuffer());
{
  using model = Model.fromBytes(bytes);
  const c: Columnar = model.predictBatch(['a'], { columnar: true });
  using monitor: Monitor = model.monitor({ sampleRate: 0.5 });
  console.log(c.width, monitor.seen);
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
