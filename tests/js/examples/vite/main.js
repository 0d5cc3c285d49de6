// A Vite app: `import { Model } from 'skedge'` resolves the package's browser entry; Vite emits
// skedge_bg.wasm (found through `new URL(..., import.meta.url)`) and the artifact (`?url`) as
// hashed assets. Put your artifact beside this file as model.skedge.
import { Model } from 'skedge';
import modelUrl from './model.skedge?url';

const status = document.querySelector('#status');
const input = document.querySelector('#text');
const result = document.querySelector('#result');

const model = await Model.load(modelUrl);
const info = model.info();
status.textContent = `${info.name} · ${info.estimator}`;

function render() {
  const { label, proba } = model.predict(input.value);
  result.textContent = `label: ${label}${proba ? ` (p = ${Math.max(...proba).toFixed(3)})` : ''}`;
  result.dataset.label = String(label);
}
input.addEventListener('input', render);
render();
// For the tests: the model the app loaded.
window.skedgeModel = model;
