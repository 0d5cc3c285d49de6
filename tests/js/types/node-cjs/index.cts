// A TypeScript CommonJS file (`.cts`, module node16): `import` compiles to `require('skedge')`.
import { readFileSync } from 'node:fs';
import { Model, SkedgeError, init, initSync } from 'skedge';
import type { ModelInfo, SkedgeErrorCode } from 'skedge';
import { Model as Lite } from 'skedge/lite';

void init();
initSync(); // Node ignores its argument: none needed
const model: Model = Model.fromBytes(readFileSync('model.skedge'));
const info: ModelInfo = model.info();
Lite.fromBytes(readFileSync('model.skedge')).predict('x');
try {
  model.predictBatch(['a', 'b']);
  model.predictBatch(Object.freeze(['a', 'b'])); // a readonly array
} catch (err: unknown) {
  if (err instanceof SkedgeError) {
    const code: SkedgeErrorCode = err.code;
    console.log(code);
  }
}
model.free();
console.log(info.integrity);
