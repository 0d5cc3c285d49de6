// skedge's offline demo: a text box that predicts as you type, with the npm package's browser
// build (vendor/skedge/, copied by scripts/build_www.sh) and the models listed in
// models/index.json. No framework, no bundler: this file is the whole app.
//
// For tests, #raw holds the last prediction as JSON ({model, chars, label, decision, proba}),
// numbers at full precision (JSON.stringify writes the shortest round-trip form), and <html> gets
// data-state="ready" | "error", data-offline-ready="true" once the service worker controls
// the page, data-offline-error="…" while its precache fails (it is tried again), and
// data-storage="persistent" | "best-effort" once the browser answered whether it keeps the
// offline copy (navigator.storage.persist(), asked once the copy is complete).
//
// Served with a publish pointer (`?pointer=URL`, FORMAT.md §5; `&key=` the publisher's
// `skedge-ed25519-public:…` key, `&interval=` seconds, default 5), the page follows it with
// `Model.follow` instead of loading models/: it shows the version and generation it serves and
// switches live when the pointer moves (<html data-follow-version="…">). Without it, as before.
//
// Champion and challenger (`?champion=URL&challenger=URL`, each an artifact URL or a pointer URL,
// i.e. a path ending in .json, followed as above with the same `&key=` and `&interval=`): both
// models predict the typed text side by side (#arms-raw holds both predictions and the running
// totals as JSON); a true-label button scores the text with an `Experiment` in shadow mode and gives
// it the label (`feedback`), and the totals of its snapshots (agreement, each arm's accuracy on the
// labels given) are shown. The page's prediction, explanation and model card show the champion.
//
// What a URL given to the page sends is read at most MAX_URL_BYTES (the package's `maxBytes`;
// ARTIFACT_TOO_LARGE past it), pointers are polled at most once a second, and a parameter the page
// cannot use is an INVALID_PARAMETER error on the page.

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'style') node.style.cssText = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role' || k === 'title' || k === 'scope') node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
};

const WINDOW = 50; // timings: median over the last WINDOW texts
const MIN_TIMED_MS = 2; // each measurement repeats the call for at least this long
const EXPLAIN_K = 64; // features asked of explain() for the highlight
const TABLE_ROWS = 10; // of which the table lists this many
const HIGHLIGHT_MAX = 20000; // UTF-16 code units highlighted (longer texts: the start)
const LONG_TEXT = 100000; // UTF-16 code units from which typing predicts once per frame, not per key
const TIMER_MS = 0.1; // performance.now()'s resolution in a page that is not cross-origin isolated
// The most the page reads of an artifact from a URL it was given (?champion=, ?challenger=, and
// the blobs a ?pointer= names), as `maxBytes` of Model.load and Model.follow. skedge's artifacts
// are about 1 MB, the largest a few tens of MB; while loading, the bytes are held more than once
// (the chunks read, their join, the copy in WebAssembly memory). By default the package reads up to
// 2 GiB − 1: a link to an endless response (or to a pointer announcing 2 GiB) would fill the tab.
const MAX_URL_BYTES = 128 * 1048576;
// Publish pointers are polled at most once a second (test_sync.sh's followers poll every second):
// `&interval=0.001` in a link would have every visitor's tab ask the host a thousand times a second.
const MIN_INTERVAL_S = 1;

const ERROR_HINTS = {
  LOAD_FAILED: 'The engine or the artifact could not be downloaded or started. If you are offline, this page needs one visit online first.',
  INTEGRITY_MISMATCH: 'The artifact’s bytes do not match the sha256 in its manifest, so skedge refuses to run it.',
  ARTIFACT_CORRUPT: 'The file is not a valid skedge artifact (truncated, altered, or not an artifact at all).',
  ARTIFACT_VERSION_UNSUPPORTED: 'The artifact was written in a format version this build of skedge does not read.',
  INPUT_TOO_LARGE: 'The text is larger than the 16 MiB skedge accepts.',
  INVALID_INPUT: 'The input is not text skedge can read.',
  NOT_INITIALIZED: 'The engine was used before it was initialised (a bug in this page).',
  HTTP: 'The demo’s files could not be fetched from the server.',
  INVALID_DEMO_FILE: 'The file is not what scripts/build_www.sh writes (a host that answers a missing file with an HTML page does this): rebuild the demo, or check the host.',
  ARTIFACT_TOO_LARGE: `skedge’s models are a few MB: this page stops reading a URL at ${MAX_URL_BYTES / 1048576} MiB, so that a link cannot fill the tab’s memory. Load a larger model with the npm package in Node or a Worker.`,
  INVALID_PARAMETER: 'The page’s address (after the “?”) is not one it understands: ?pointer=URL, or ?champion=URL&challenger=URL, each with &key= and &interval= optional.',
};
// A URL given to the page (?pointer=, ?champion=) that could not be fetched: the browser says no
// more than "Failed to fetch", whose usual cause on another host is its CORS rules.
const URL_HINTS = {
  LOAD_FAILED: 'Open the URL in a new tab to check it. A host other than this page’s must allow this page’s origin (CORS: Access-Control-Allow-Origin, a bucket’s CORS rules); offline, only the page’s own models work.',
};

const state = {
  skedge: null,
  index: null, // models/index.json
  entry: null, // the selected entry of index.models
  loaded: new Map(), // id -> { model, manifest, info, loadMs, bytes, fromCache }
  loadToken: 0,
  times: { predict: [], explain: [] },
  lastExamples: new Set(),
  announceTimer: 0,
  follow: null, // { url, publicKey, interval } with ?pointer=
  follower: null, // Promise<Follower>
  arms: null, // with ?champion=&challenger=: { urls, publicKey, interval, models, exp, last, totals }
  frame: 0, // requestAnimationFrame id of a long text's pending prediction
  sw: { error: null, retries: 0, timer: 0 }, // the service worker's failed precache, and its retries
  storage: null, // 'asking' | 'persistent' | 'best-effort' once the offline copy is complete
};

// ---------------------------------------------------------------------------------------------
// formatting

// One formatter per number of digits: constructing an Intl.NumberFormat costs more than formatting.
const formatters = new Map();
const nf = (digits) => {
  let f = formatters.get(digits);
  if (!f) formatters.set(digits, (f = new Intl.NumberFormat('en', { maximumFractionDigits: digits, minimumFractionDigits: digits })));
  return f;
};
const fmtBytes = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${nf(1).format(n / 1024)} KiB`
  : n < 1073741824 ? `${nf(2).format(n / 1048576)} MiB` : `${nf(2).format(n / 1073741824)} GiB`);
const fmtMs = (ms) => (ms < 10 ? `${nf(2).format(ms)} ms` : ms < 100 ? `${nf(1).format(ms)} ms` : `${Math.round(ms)} ms`);
const fmtTime = (ms) => (ms < 1 ? `${nf(ms < 0.01 ? 2 : 1).format(ms * 1000)} µs` : fmtMs(ms));
// One call timed once: to the timer's resolution, no finer.
const fmtOnce = (ms) => (ms < TIMER_MS ? `under ${TIMER_MS} ms` : ms < 100 ? `${nf(1).format(ms)} ms` : `${Math.round(ms)} ms`);
const fmtSigned = (x, d = 3) => (x > 0 ? '+' : x < 0 ? '−' : '') + nf(d).format(Math.abs(x));
function fmtPct(p) {
  if (p > 0 && p < 0.0001) return '<0.01 %';
  if (p < 1 && p > 0.9999) return '>99.99 %';
  return `${nf(2).format(p * 100)} %`;
}
function fmtNum(x) {
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1e4 || a < 1e-3 ? x.toExponential(2).replace('-', '−') : fmtSigned(x, 3).replace(/^\+/, '');
}
const SUP = { '-': '⁻', 0: '⁰', 1: '¹', 2: '²', 3: '³', 4: '⁴', 5: '⁵', 6: '⁶', 7: '⁷', 8: '⁸', 9: '⁹' };
const fmtSci = (x) => {
  if (typeof x !== 'number' || x === 0) return String(x);
  const [m, e] = x.toExponential(1).split('e');
  return `${m.replace(/\.0$/, '')} × 10${[...e.replace('+', '')].map((c) => SUP[c]).join('')}`;
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
function fmtDate(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return iso || '—';
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function className(label) {
  const names = state.entry && state.entry.class_names;
  return names && Object.prototype.hasOwnProperty.call(names, String(label)) ? names[String(label)] : String(label);
}
const hasName = (label) => className(label) !== String(label);

// ---------------------------------------------------------------------------------------------
// errors

function showError(err, context, retry, hints = ERROR_HINTS) {
  const box = $('error');
  const code = (err && err.code) || (err && err.name) || 'ERROR';
  const hint = hints[code] || ERROR_HINTS[code];
  box.replaceChildren(...[
    el('p', { class: 'error-h' }, el('strong', { text: context }), ' ', el('code', { class: 'code', text: code })),
    el('p', { text: (err && err.message) || String(err) }),
    hint ? el('p', { class: 'muted', text: hint }) : null,
    retry ? el('p', {}, el('button', { type: 'button', class: 'retry', text: 'Try again', onclick: retry })) : null,
  ].filter(Boolean)); // replaceChildren would print a null as the text "null"

  box.hidden = false;
}

function clearResults() {
  $('verdict').replaceChildren(el('span', { class: 'muted', text: '—' }));
  $('bars').replaceChildren();
  $('bars-note').hidden = true;
  $('kind').textContent = '';
  $('highlight').replaceChildren();
  $('terms').tBodies[0].replaceChildren();
  $('terms').hidden = true;
  $('terms-note').hidden = true;
  $('raw').textContent = '';
  if (state.arms) for (const role of ARMS) $(`arm-${role}`).replaceChildren();
}
const clearError = () => { $('error').hidden = true; };

async function fetchJson(url) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    const err = new Error(`could not fetch ${url}: ${e.message}`);
    err.code = 'LOAD_FAILED';
    throw err;
  }
  if (!res.ok) {
    const err = new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
    err.code = 'HTTP';
    throw err;
  }
  try {
    return await res.json();
  } catch (e) {
    throw invalid(`${url} is not JSON (${e.message})`);
  }
}

// ---------------------------------------------------------------------------------------------
// what a URL given to the page sends: read at most MAX_URL_BYTES

/** The package's refusal of an artifact over `maxBytes` (INPUT_TOO_LARGE: a Content-Length refused
 * unread, a body cut as it streams, a pointer naming a larger blob; the message names the URL and
 * the limit) as the page's ARTIFACT_TOO_LARGE, whose hint says why the page stops there; any other
 * error as it is. Only for what a URL sent: a text over 16 MiB is INPUT_TOO_LARGE too. */
const fromUrl = (e) => (e && e.code === 'INPUT_TOO_LARGE'
  ? Object.assign(new Error(e.message), { code: 'ARTIFACT_TOO_LARGE', cause: e })
  : e);

/** An artifact from a URL (?champion=, ?challenger=), read at most MAX_URL_BYTES. */
function loadArtifact(url, options) {
  return state.skedge.Model.load(url, { ...options, maxBytes: MAX_URL_BYTES }).catch((e) => { throw fromUrl(e); });
}

const invalid = (message) => Object.assign(new Error(message), { code: 'INVALID_DEMO_FILE' });
const isObject = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);

/** models/index.json as scripts/build_www.sh writes it, or INVALID_DEMO_FILE naming what is not. */
function checkIndex(index) {
  if (!isObject(index) || !Array.isArray(index.models)) throw invalid('models/index.json has no "models" list');
  if (!index.models.length) throw invalid('models/index.json lists no models');
  index.models.forEach((m, k) => {
    for (const key of ['id', 'label', 'file', 'manifest']) {
      if (!isObject(m) || typeof m[key] !== 'string' || !m[key]) throw invalid(`models/index.json: model ${k + 1} has no "${key}" string`);
    }
    if (m.examples !== undefined && !(Array.isArray(m.examples) && m.examples.every((t) => typeof t === 'string'))) {
      throw invalid(`models/index.json: the examples of ${m.id} are not a list of strings`);
    }
    if (m.class_names !== undefined && !isObject(m.class_names)) throw invalid(`models/index.json: the class_names of ${m.id} are not an object`);
  });
  return index;
}

/** A model's manifest (scripts/manifest.py): the fields the page reads have the types it expects. */
function checkManifest(m, name) {
  const bad = (what) => invalid(`models/${name}: ${what}`);
  if (!isObject(m)) throw bad('not a JSON object');
  for (const key of ['integrity', 'sha256', 'estimator', 'precision', 'exported_at']) {
    if (m[key] !== undefined && m[key] !== null && typeof m[key] !== 'string') throw bad(`"${key}" is not a string`);
  }
  for (const key of ['name', 'version']) {
    if (m[key] !== undefined && m[key] !== null && !['string', 'number'].includes(typeof m[key])) throw bad(`"${key}" is not a string`);
  }
  for (const key of ['metrics', 'provenance']) if (m[key] !== undefined && m[key] !== null && !isObject(m[key])) throw bad(`"${key}" is not an object`);
  if (m.classes !== undefined && !Array.isArray(m.classes)) throw bad('"classes" is not a list');
  const p = m.parity;
  if (p !== undefined && p !== null) {
    if (!isObject(p) || typeof p.passed !== 'boolean') throw bad('"parity" has no "passed" boolean');
    for (const key of ['texts', 'mismatches']) if (!Number.isFinite(p[key])) throw bad(`"parity.${key}" is not a number`);
    if (p.passed) for (const key of ['max_proba_diff', 'tolerance']) if (typeof p[key] !== 'number') throw bad(`"parity.${key}" is not a number`);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// loading

function setProgress(loaded, total, text) {
  const bar = $('load-bar');
  if (total) {
    bar.max = total;
    bar.value = Math.min(loaded, total);
  } else if (loaded === null) {
    bar.removeAttribute('value'); // indeterminate
  } else {
    bar.max = 1;
    bar.value = loaded;
  }
  if (text) $('load-text').textContent = text;
}

async function selectModel(id) {
  const entry = state.index.models.find((m) => m.id === id) || state.index.models[0];
  state.entry = entry;
  $('model').value = entry.id;
  if (location.hash !== `#${entry.id}`) history.replaceState(null, '', `#${entry.id}`);
  $('text').lang = entry.language || '';
  clearError();
  renderExamples(entry);
  const token = ++state.loadToken;

  let slot = state.loaded.get(entry.id);
  if (!slot) {
    const load = $('load');
    load.dataset.state = 'loading';
    setProgress(null, null, `Loading ${entry.label}…`);
    $('text').setAttribute('aria-busy', 'true');
    // Nothing of the previous model stays on screen under this one's name while it downloads.
    clearResults();
    $('verdict').replaceChildren(el('span', { class: 'muted', text: `Loading ${entry.label}…` }));
    for (const t of ['t-load', 't-first', 't-predict', 't-explain']) $(t).textContent = '…';
    renderCard(entry, null, null);
    $('card-source').textContent = 'loading…';
    try {
      let manifest = null;
      let model;
      const t0 = performance.now();
      let received = 0;
      if (state.arms) {
        model = await loadArms();
      } else if (state.follow) {
        model = await follow();
      } else {
        manifest = checkManifest(await fetchJson(`models/${entry.manifest}`), entry.manifest);
        const url = new URL(`models/${entry.file}`, document.baseURI).href;
        model = await state.skedge.Model.load(url, {
          integrity: manifest.integrity,
          onProgress: ({ loaded, total }) => {
            received = loaded;
            if (token === state.loadToken) {
              setProgress(loaded, total, `Loading: ${fmtBytes(loaded)}${total ? ` of ${fmtBytes(total)}` : ''}`);
            }
          },
        });
      }
      const loadMs = performance.now() - t0;
      // The first prediction after the load, as a visitor's first keystroke meets it. Not cold:
      // Model.load already predicted once (the package's warm-up), and one call is timed to the
      // timer's 0.1 ms, no finer.
      const t1 = performance.now();
      model.predict((entry.examples || [''])[0] || '');
      const firstMs = performance.now() - t1;
      const info = model.info();
      const fromCache = Boolean(navigator.serviceWorker && navigator.serviceWorker.controller);
      slot = { model, manifest, info, loadMs, firstMs, bytes: received || info.bytes, fromCache };
      state.loaded.set(entry.id, slot);
    } catch (err) {
      if (token !== state.loadToken) return;
      load.dataset.state = 'error';
      setProgress(0, 1, `Could not load ${entry.label}.`);
      $('text').removeAttribute('aria-busy');
      $('text').disabled = true; // no stale predictions from the previous model
      for (const b of $('examples').querySelectorAll('button')) b.disabled = true;
      clearResults();
      for (const t of ['t-load', 't-first', 't-predict', 't-explain']) $(t).textContent = '—';
      showError(err, `Could not load “${entry.label}”`, () => pick(entry.id), state.arms || state.follow ? URL_HINTS : ERROR_HINTS);
      renderCard(entry, null, null);
      document.documentElement.dataset.state = 'error';
      return;
    }
  }
  if (token !== state.loadToken) return; // another model was picked meanwhile
  const { loadMs, firstMs, bytes, fromCache } = slot;
  $('load').dataset.state = 'done';
  if (!state.follow && !state.arms) setProgress(1, 1, `${fmtBytes(bytes)} loaded, ${slot.manifest.integrity ? 'sha256 verified' : 'not verified on load (no integrity in the manifest)'}, ready in ${fmtMs(loadMs)}`);
  $('t-load').textContent = `${fmtMs(loadMs)} · ${fmtBytes(bytes)}${fromCache ? ' · via service worker' : ''}`;
  $('t-first').textContent = `${fmtOnce(firstMs)} · load to first prediction ${fmtMs(loadMs + firstMs)}`;
  $('text').removeAttribute('aria-busy');
  $('text').disabled = false;
  state.times.predict = [];
  state.times.explain = [];
  if (!slot.warm) { // the first calls of a model pay for lazy compilation and tier-up: not timed
    const t0 = performance.now();
    for (let i = 0; i < 200 && performance.now() - t0 < 20; i += 1) {
      slot.model.predict('warm up the engine');
      slot.model.explain('warm up the engine', EXPLAIN_K);
    }
    slot.warm = true;
  }
  renderCard(entry, slot.manifest, slot.info);
  if (state.follow) renderFollow();
  if (state.arms) renderArmsSource();

  // A text the user wrote stays; an example of the previous model is replaced by one of this one.
  const text = $('text');
  if (!text.value || state.lastExamples.has(text.value)) text.value = (entry.examples || [''])[0] || '';
  state.lastExamples = new Set(entry.examples || []);
  run();
  document.documentElement.dataset.state = 'ready';
  document.documentElement.dataset.model = entry.id;
}

// ---------------------------------------------------------------------------------------------
// following a publish pointer (?pointer=URL)

/** The one follower of the page (every entry of the list predicts with it). */
function follow() {
  const { url, publicKey, interval } = state.follow;
  state.follower ??= state.skedge.Model.follow(url, {
    ...(publicKey && { publicKey }),
    intervalSeconds: interval,
    maxBytes: MAX_URL_BYTES,
    onUpdate: () => {
      // The new version is already serving: refresh what the page shows of it.
      for (const slot of state.loaded.values()) slot.info = slot.model.info();
      if (state.entry && state.loaded.has(state.entry.id)) {
        renderCard(state.entry, null, state.loaded.get(state.entry.id).info);
        renderFollow();
        run();
      }
    },
    onError: (err) => renderFollow(fromUrl(err)),
  }).catch((e) => { throw fromUrl(e); });
  state.follower.catch(() => { state.follower = null; });
  return state.follower;
}

/** "following …: version V, generation G", and a refusal (the current version keeps serving). */
function renderFollow(err) {
  const slot = state.entry && state.loaded.get(state.entry.id);
  if (!slot) return;
  const p = slot.model.pointer;
  setProgress(1, 1, `following ${state.follow.url}: version ${p.version}, generation ${p.generation}, ${verification(state.follow)}, checked every ${state.follow.interval} s${err ? ` (refused an update: ${err.code || err.message}; still serving this version)` : ''}`);
  document.documentElement.dataset.followVersion = p.version;
  document.documentElement.dataset.followGeneration = String(p.generation);
  $('card-source').textContent = `pointer ${state.follow.url}`;
}

/** What was checked of a model from the URL (?pointer=, ?champion=, ?challenger=): with &key=,
 * the publisher's signature; without, nothing but the artifact's own checksum. */
const verification = ({ publicKey }) => (publicKey ? 'signature verified (&key=)' : 'unverified (no key)');

// ---------------------------------------------------------------------------------------------
// champion and challenger (?champion=URL&challenger=URL)

const ARMS = ['champion', 'challenger'];

/** Loads both arms (an artifact, or a pointer followed), starts the experiment, returns the champion. */
async function loadArms() {
  const { Model, Experiment } = state.skedge;
  const { urls, publicKey, interval } = state.arms;
  const open = (role) => {
    if (!new URL(urls[role]).pathname.endsWith('.json')) return loadArtifact(urls[role], publicKey ? { publicKey } : undefined);
    return Model.follow(urls[role], {
      ...(publicKey && { publicKey }),
      intervalSeconds: interval,
      maxBytes: MAX_URL_BYTES,
      onUpdate: () => { // the new version already serves (and the experiment closed its window)
        const slot = state.loaded.get('experiment');
        if (!slot) return;
        slot.info = slot.model.info();
        renderCard(state.entry, null, slot.info);
        renderArmsSource();
        run();
      },
      onError: (err) => renderArmsSource(`${role}: refused an update (${fromUrl(err).code || err.message}); still serving its version`),
    }).catch((e) => { throw fromUrl(e); });
  };
  const [champion, challenger] = await Promise.all(ARMS.map(open));
  state.arms.models = { champion, challenger };
  // Shadow, every text: each labelled text is one pair, scored by both arms.
  state.arms.exp = new Experiment(champion, challenger, { mode: 'shadow', sampleRate: 1 });
  const classes = champion.info().classes;
  state.arms.totals = {
    labelled: 0, pairs: 0, agree: 0, probaPairs: 0, sumAbsDproba: 0, maxAbsDproba: 0, windows: 0,
    feedback: ARMS.map(() => ({ count: 0, correct: 0 })),
  };
  $('truth').replaceChildren(...classes.map((c) => el('button', {
    type: 'button', class: 'chip', text: className(c), 'data-label': String(c), onclick: () => giveLabel(c),
  })));
  $('arms').hidden = false;
  renderArmsStats();
  return champion;
}

function renderArmsSource(note) {
  const part = (role) => {
    const m = state.arms.models[role];
    const { name, version } = m.info();
    return `${role} ${name} ${version}${m.pointer ? ` (pointer version ${m.pointer.version}, generation ${m.pointer.generation})` : ''}`;
  };
  const polled = ARMS.some((role) => state.arms.models[role].pointer) ? `, pointers checked every ${state.arms.interval} s` : '';
  setProgress(1, 1, `${part('champion')} · ${part('challenger')}, both ${verification(state.arms)}${polled}${note ? ` — ${note}` : ''}`);
  $('card-source').textContent = `champion ${state.arms.urls.champion}`;
}

function renderArms(text) {
  const out = {};
  for (const role of ARMS) {
    const m = state.arms.models[role];
    const p = m.predict(text);
    const info = m.info();
    const li = info.classes.indexOf(p.label);
    out[role] = { label: p.label, decision: p.decision, proba: p.proba, sha256: info.sha256 };
    $(`arm-${role}`).replaceChildren(
      el('p', { class: 'arm-role', text: role }),
      el('p', { class: 'arm-model', text: `${info.name} · ${info.version}${m.pointer ? ` · generation ${m.pointer.generation}` : ''}` }),
      el('p', { class: 'arm-label', text: className(p.label) }),
      el('p', { class: 'arm-score', text: p.proba ? `${fmtPct(p.proba[li])} probability` : `decision ${p.decision.map((d) => fmtSigned(d)).join(', ')}` }),
    );
  }
  state.arms.last = { chars: text.length, ...out };
  renderArmsRaw();
}

/** The user's true label: the text scored by both arms through the experiment, then its feedback;
 * every window closed since (snapshot(), or an arm's alias move) is added to the totals. */
function giveLabel(label) {
  const { exp, totals } = state.arms;
  try {
    const served = exp.predict($('text').value);
    exp.feedback(served.id, label);
    exp.snapshot();
    for (const s of exp.takePending()) {
      totals.windows += 1;
      if (s.shadow) {
        totals.pairs += s.shadow.pairs;
        totals.agree += s.shadow.agree;
        totals.probaPairs += s.shadow.proba_pairs;
        totals.sumAbsDproba += s.shadow.sum_abs_dproba;
        totals.maxAbsDproba = Math.max(totals.maxAbsDproba, s.shadow.max_abs_dproba);
      }
      s.arms.forEach((a, k) => {
        totals.feedback[k].count += a.feedback.count;
        totals.feedback[k].correct += a.feedback.correct;
      });
    }
    totals.labelled += 1;
    clearError();
  } catch (err) {
    showError(err, 'Could not record the label');
    return;
  }
  renderArmsStats();
  renderArmsRaw();
}

function renderArmsStats() {
  const t = state.arms.totals;
  const share = (k, n) => (n ? `${k} of ${n} · ${fmtPct(k / n)}` : '—');
  const rows = [
    ['labelled texts', String(t.labelled)],
    ['agreement', share(t.agree, t.pairs)],
    ...ARMS.map((role, k) => [`${role} accuracy`, share(t.feedback[k].correct, t.feedback[k].count)]),
    ['mean |Δ proba|', t.probaPairs ? nf(4).format(t.sumAbsDproba / t.probaPairs) : '— (needs probabilities from both)'],
    ['max |Δ proba|', t.probaPairs ? nf(4).format(t.maxAbsDproba) : '—'],
  ];
  $('arms-stats').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
}

function renderArmsRaw() {
  $('arms-raw').textContent = JSON.stringify({ ...state.arms.last, totals: state.arms.totals }, null, 1);
}

// ---------------------------------------------------------------------------------------------
// predicting

function timed(kind, fn) {
  let reps = 0;
  let result;
  const t0 = performance.now();
  let elapsed;
  do {
    result = fn();
    reps += 1;
    elapsed = performance.now() - t0;
  } while (elapsed < MIN_TIMED_MS && reps < 100000);
  const list = state.times[kind];
  list.push(elapsed / reps);
  if (list.length > WINDOW) list.shift();
  return result;
}

function renderTimes() {
  for (const kind of ['predict', 'explain']) {
    const list = state.times[kind];
    $(`t-${kind}`).textContent = list.length
      ? `${fmtTime(median(list))} median · ${list.length} text${list.length === 1 ? '' : 's'}`
      : '—';
  }
}

/** The text box's input: a prediction now, or for a long text one per frame (keys pressed while a
 * long text was predicting then give one prediction, not one each). */
function typed() {
  if ($('text').value.length < LONG_TEXT) {
    cancelAnimationFrame(state.frame);
    state.frame = 0;
    run();
  } else if (!state.frame) {
    state.frame = requestAnimationFrame(() => {
      state.frame = 0;
      run();
    });
  }
}

function run() {
  const slot = state.loaded.get(state.entry.id);
  if (!slot) return;
  const text = $('text').value;
  let prediction;
  let explanation;
  try {
    prediction = timed('predict', () => slot.model.predict(text));
    explanation = timed('explain', () => slot.model.explain(text, EXPLAIN_K));
    clearError();
  } catch (err) {
    clearResults(); // the previous text's prediction is not this one's
    showError(err, 'Could not predict this text');
    $('raw').textContent = JSON.stringify({ model: state.entry.id, chars: text.length, error: { code: err.code, message: err.message } }, null, 1);
    return;
  }
  renderPrediction(slot.info, prediction);
  renderExplanation(slot.info, text, explanation);
  renderTimes();
  if (state.arms) renderArms(text);
  $('raw').textContent = JSON.stringify(
    { model: state.entry.id, chars: text.length, label: prediction.label, decision: prediction.decision, proba: prediction.proba },
    null,
    1,
  );
  clearTimeout(state.announceTimer);
  state.announceTimer = setTimeout(() => {
    const p = prediction.proba ? ` with probability ${fmtPct(prediction.proba[slot.info.classes.indexOf(prediction.label)])}` : '';
    $('announce').textContent = `Predicted ${className(prediction.label)}${p}.`;
  }, 700);
}

function renderPrediction(info, p) {
  const classes = info.classes;
  const li = classes.indexOf(p.label);
  const verdict = $('verdict');
  const conf = p.proba ? fmtPct(p.proba[li]) : null;
  verdict.replaceChildren(
    el('span', { class: 'verdict-label', text: className(p.label) }),
    el('span', { class: 'verdict-sub' },
      hasName(p.label) ? `class ${p.label}` : null,
      hasName(p.label) && conf ? ' · ' : null,
      conf ? `${conf} probability` : null),
  );
  $('kind').textContent = p.proba ? 'predict_proba' : 'decision_function (no predict_proba)';

  const bars = $('bars');
  const note = $('bars-note');
  if (p.proba) {
    bars.replaceChildren(...classes.map((c, i) => barRow(c, i === li, p.proba[i], fmtPct(p.proba[i]), String(p.proba[i]))));
    note.hidden = true;
  } else {
    // One decision value for a binary model (it scores classes[1]), else one per class.
    const rows = p.decision.length === 1 ? [[classes[1], p.decision[0]]] : classes.map((c, i) => [c, p.decision[i]]);
    const scale = Math.max(1, ...rows.map(([, d]) => Math.abs(d)));
    bars.replaceChildren(...rows.map(([c, d]) => barRow(c, c === p.label, d / scale, fmtSigned(d, 3), String(d), true)));
    note.hidden = false;
    note.textContent = p.decision.length === 1
      ? `${info.estimator} has no probabilities. Its one decision value scores “${className(classes[1])}”: above 0 predicts it, otherwise “${className(classes[0])}”.`
      : `${info.estimator} has no probabilities: the class with the largest decision value is predicted.`;
  }
}

function barRow(label, top, frac, shown, exact, diverging = false) {
  const fill = diverging
    ? el('span', { class: `fill ${frac < 0 ? 'left' : 'right'}`, style: `--w:${Math.abs(frac) * 50}%` })
    : el('span', { class: 'fill', style: `--w:${Math.max(0, Math.min(1, frac)) * 100}%` });
  return el('li', { class: `bar${top ? ' predicted' : ''}${diverging ? ' diverging' : ''}` },
    el('span', { class: 'bar-label' },
      el('span', { class: 'tick', 'aria-hidden': 'true', text: top ? '✓' : '' }),
      className(label),
      top ? el('span', { class: 'visually-hidden', text: ' (predicted)' }) : null),
    el('span', { class: 'track', 'aria-hidden': 'true' }, fill),
    el('span', { class: 'bar-value', title: exact, text: shown }));
}

// +1, or -1 when the decision row scores the other class: a one-row (binary) model's single
// decision value scores classes[1], so its contributions point away from classes[0].
function sign(info, e) {
  return e.features.length && e.features[0].contributions.length === 1 && info.classes.length === 2 && e.label === info.classes[0] ? -1 : 1;
}
// Contribution of a feature toward the predicted class.
const toward = (info, e, f) => sign(info, e) * (f.contributions[e.row] ?? 0);

function renderExplanation(info, text, e) {
  const box = $('highlight');
  const tbody = $('terms').tBodies[0];
  if (!text.trim()) {
    box.replaceChildren(el('span', { class: 'muted', text: 'Type something to see which words push the prediction.' }));
    tbody.replaceChildren();
    $('terms').hidden = true;
    $('terms-note').hidden = true;
    return;
  }
  // Per UTF-16 code unit: the sum of the contributions of every feature found there.
  const n = Math.min(text.length, HIGHLIGHT_MAX);
  const score = new Float64Array(n);
  for (const f of e.features) {
    const c = toward(info, e, f);
    for (const [s, t] of f.spans) for (let i = s; i < Math.min(t, n); i += 1) score[i] += c;
  }
  // Spaces stay plain: a word bigram's contribution belongs to its words, not to the gap.
  for (let i = 0; i < n; i += 1) if (/\s/.test(text[i])) score[i] = 0;
  let max = 0;
  for (let i = 0; i < n; i += 1) max = Math.max(max, Math.abs(score[i]));
  const parts = [];
  let i = 0;
  while (i < n) {
    let j = i + 1;
    while (j < n && score[j] === score[i]) j += 1;
    // never split a surrogate pair
    if (j < n && text.charCodeAt(j) >= 0xdc00 && text.charCodeAt(j) <= 0xdfff) {
      j += 1;
      while (j < n && score[j] === score[i]) j += 1;
    }
    const piece = text.slice(i, j);
    const s = score[i];
    if (s === 0 || max === 0) parts.push(piece);
    else {
      const a = 0.14 + 0.66 * (Math.abs(s) / max);
      parts.push(el('mark', { class: `hl ${s > 0 ? 'pos' : 'neg'}`, style: `--a:${a.toFixed(3)}`, title: `${fmtSigned(s)} ${s > 0 ? 'toward' : 'away from'} ${className(e.label)}` }, piece));
    }
    i = j;
  }
  if (text.length > n) parts.push(el('span', { class: 'muted', text: ` … (first ${n.toLocaleString('en')} characters shown)` }));
  box.replaceChildren(...parts);

  const flip = sign(info, e);
  const rows = e.features.slice(0, TABLE_ROWS).map((f) => {
    const c = toward(info, e, f);
    const dir = c > 0 ? 'pos' : 'neg';
    const term = f.terms.length > 1 ? f.terms.join(' | ') : f.term;
    return el('tr', {},
      // Spaces are visible (␣) in character n-grams, whose edges are spaces: ' go', 'od '.
      el('td', {}, el('code', { class: `term ${dir}`, text: term === term.trim() ? term : term.replace(/ /g, '␣') })),
      el('td', { class: 'num opt', title: String(f.value), text: fmtNum(f.value) }),
      el('td', { class: 'num opt', title: String(f.weights[e.row]), text: fmtNum(flip * (f.weights[e.row] ?? 0)) }),
      el('td', { class: `num eff ${dir}`, title: String(f.contributions[e.row]) },
        el('span', { 'aria-hidden': 'true', text: c > 0 ? '▲ ' : '▼ ' }),
        fmtSigned(c), el('span', { class: 'visually-hidden', text: c > 0 ? ' toward' : ' away' })));
  });
  tbody.replaceChildren(...rows);
  $('terms').hidden = rows.length === 0;
  const note = $('terms-note');
  note.hidden = flip === 1 || rows.length === 0;
  note.textContent = `This binary model has one decision value, which scores “${className(info.classes[1])}”; weights and contributions are shown with their signs flipped, toward “${className(e.label)}”. Hover a number for its raw value.`;
  if (!rows.length) box.append(el('span', { class: 'muted', text: ' — none of these words are in the model’s vocabulary.' }));
}

// ---------------------------------------------------------------------------------------------
// the model card

function renderCard(entry, manifest, info) {
  const dl = $('card');
  const rows = [];
  const add = (k, ...v) => rows.push(el('dt', { text: k }), el('dd', {}, ...v));
  const m = manifest || {};
  const i = info || {};
  const ok = (t) => el('span', { class: 'ok' }, el('span', { 'aria-hidden': 'true', text: '✓ ' }), t);
  const bad = (t) => el('span', { class: 'bad' }, el('span', { 'aria-hidden': 'true', text: '✗ ' }), t);

  add('model', el('strong', { text: m.name || i.name || entry.id }), (m.version || i.version) ? ` · version ${m.version || i.version}` : '');
  if (entry.description) add('about', entry.description);
  add('estimator', `${m.estimator || i.estimator || '—'}`, (i.nFeatures || m.n_features) ? ` · ${nf(0).format(i.nFeatures || m.n_features)} features` : '');
  const classes = i.classes || m.classes || [];
  add('classes', ...classes.flatMap((c, k) => [k ? ', ' : '', el('span', { text: hasName(c) ? `${className(c)} (${c})` : String(c) })]));
  const metrics = Object.entries(m.metrics || i.metrics || {});
  add('training metrics', metrics.length
    ? el('span', { class: 'metrics' }, ...metrics.map(([k, v]) => el('span', { class: 'metric' }, el('span', { class: 'muted', text: `${k} ` }), typeof v === 'number' ? nf(3).format(v) : String(v))))
    : el('span', { class: 'muted', text: 'none recorded' }));
  add('exported', fmtDate(m.exported_at || m.created || i.created));
  const parity = m.parity;
  if (parity && parity.passed) {
    add('parity', ok(`passed: ${nf(0).format(parity.texts)} texts, ${parity.mismatches} mismatches`),
      el('span', { class: 'muted small block', title: `max |Δ proba| = ${parity.max_proba_diff}`, text: `against scikit-learn, ${parity.runtime}; largest probability difference ${fmtSci(parity.max_proba_diff)} (tolerance ${fmtSci(parity.tolerance)})` }));
  } else if (parity) {
    add('parity', bad(`failed: ${parity.mismatches} of ${parity.texts} texts differ`));
  } else {
    add('parity', el('span', { class: 'muted', text: manifest ? 'not recorded in this manifest' : '—' }));
  }
  add('artifact', `${fmtBytes(m.size || i.bytes || 0)} · format v${m.format_version || i.formatVersion || '?'} · precision ${m.precision || i.precision || '?'}`);
  const sha = m.sha256 || i.sha256;
  let check = null;
  if (info && manifest) {
    if (info.sha256 !== manifest.sha256) check = bad(`the loaded artifact has sha256 ${info.sha256}`);
    else if (manifest.integrity) check = ok('the loaded bytes match the manifest (integrity checked on load)');
    else check = bad('not verified on load (no integrity in the manifest); the loaded bytes have the sha256 it names');
  } else if (info && (state.arms || state.follow)) {
    const from = state.arms || state.follow;
    check = from.publicKey ? ok('signature verified with the key given (&key=)') : bad('unverified (no key): no signature was checked (add &key=)');
  }
  add('sha256', el('code', { class: 'hash', text: sha || '—' }), check ? el('span', { class: 'block small' }, check) : null);
  const versions = [
    ['scikit-learn', m.sklearn_version || i.sklearnVersion], ['numpy', i.numpyVersion], ['Python', i.pythonVersion],
    ['Unicode', i.unicodeVersion], ['skedge', m.skedge_version || i.skedgeVersion],
  ].filter(([, v]) => v);
  if (versions.length) add('exported with', versions.map(([k, v]) => `${k} ${v}`).join(' · '));
  const prov = Object.entries(m.provenance || i.provenance || {});
  if (prov.length) {
    add('provenance', el('details', { class: 'prov' }, el('summary', { text: `${prov.length} field${prov.length > 1 ? 's' : ''}` }),
      el('dl', { class: 'kv small' }, ...prov.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v) })]))));
  }
  dl.replaceChildren(...rows);
  $('card-source').textContent = manifest ? `models/${entry.manifest}` : 'manifest unavailable';
}

function renderExamples(entry) {
  const box = $('examples');
  const examples = entry.examples || [];
  box.replaceChildren(...examples.map((t) => el('button', {
    type: 'button',
    class: 'chip',
    lang: entry.language || '',
    title: t,
    text: t.length > 48 ? `${t.slice(0, 46).trimEnd()}…` : t,
    onclick: () => { $('text').value = t; run(); $('text').focus(); },
  })));
  $('examples-h').hidden = examples.length === 0;
}

// ---------------------------------------------------------------------------------------------
// offline: the service worker and the network pill

function renderNet(swReady) {
  const pill = $('net');
  const online = navigator.onLine;
  const ready = swReady ?? document.documentElement.dataset.offlineReady === 'true';
  const failed = !ready && state.sw.error;
  pill.dataset.mode = !online ? 'offline' : ready ? 'ready' : failed ? 'unavailable' : 'online';
  pill.textContent = !online
    ? (ready ? 'Offline — running from the cache' : 'Offline')
    : ready ? 'Works offline'
      : failed ? `Online · offline mode unavailable: ${state.sw.error} (retrying)`
        : 'serviceWorker' in navigator ? 'Online · caching for offline use…'
          // Browsers give service workers only to https pages and this machine's (a plain http
          // address of another host, a phone trying a laptop's server): the address, not the browser.
          : !window.isSecureContext ? 'Online · no offline mode over plain http: open it over https, or on localhost'
            : 'Online (no offline support in this browser)';
}

/** Asks the browser, once the offline copy is complete, to keep it: the Cache API's storage is
 * "best-effort", cleared under storage pressure unless the site's storage is persistent.
 * Chromium grants or refuses persist() silently (by how the site is used: bookmarked, installed);
 * Firefox asks the visitor. Nothing waits on the answer; the page says what it is
 * (<html data-storage="persistent" | "best-effort">). */
async function keepOfflineCopy() {
  if (state.storage) return;
  state.storage = 'asking';
  const storage = navigator.storage;
  let kept = false;
  let why = '';
  try {
    if (storage && typeof storage.persisted === 'function') kept = (await storage.persisted()) || (await storage.persist());
    else why = 'this browser cannot be asked to keep it';
  } catch (err) {
    why = `could not ask: ${err.message}`;
  }
  state.storage = kept ? 'persistent' : 'best-effort';
  document.documentElement.dataset.storage = state.storage;
  const line = $('storage');
  line.textContent = kept
    ? 'Storage: persistent. The browser keeps the offline copy even when disk space runs low.'
    : `Storage: best-effort (${why || 'the browser did not grant persistent storage'}). It may clear the offline copy when disk space runs low; the next visit online caches it again.`;
  line.hidden = false;
}

const SW_OPTIONS = { updateViaCache: 'none' };
const SW_RETRY_MS = [3000, 10000, 30000, 60000, 300000]; // then every 5 minutes

async function registerServiceWorker() {
  renderNet(false);
  addEventListener('online', () => {
    renderNet();
    if (state.sw.error) retryServiceWorker(0); // the network is back: try caching again now
  });
  addEventListener('offline', () => renderNet());
  if (!('serviceWorker' in navigator)) return;
  const sw = navigator.serviceWorker;
  const markReady = () => {
    if (sw.controller) {
      document.documentElement.dataset.offlineReady = 'true';
      renderNet(true);
      keepOfflineCopy();
    }
  };
  sw.addEventListener('controllerchange', () => {
    if (state.reloading) location.reload();
    else markReady();
  });
  // The worker says why its precache failed (sw.js): the file and the HTTP status.
  sw.addEventListener('message', (event) => {
    if (!event.data || event.data.type !== 'PRECACHE_FAILED') return;
    state.sw.reason = String(event.data.message);
    if (state.sw.error) show(state.sw.reason); // the worker's statechange came first
  });
  markReady();
  let reg;
  try {
    reg = await sw.register('sw.js', SW_OPTIONS);
  } catch (err) {
    failed(err.message);
    return;
  }
  if (!reg) return; // a browser that blocks service workers (Playwright's serviceWorkers: 'block')
  watch(reg);
}

/** Follows a registration's new workers: an update is offered; a worker whose precache fails
 * (it goes from installing to redundant) is reported and tried again. */
function watch(reg) {
  state.sw.reg = reg;
  const seen = (state.sw.seen ??= new WeakSet());
  const track = (worker) => {
    if (!worker || seen.has(worker)) return;
    seen.add(worker);
    state.sw.reason = null;
    let installed = worker.state !== 'installing';
    const changed = () => {
      if (worker.state === 'installed') {
        installed = true;
        state.sw.error = null;
        state.sw.retries = 0;
        delete document.documentElement.dataset.offlineError;
        renderNet();
        if (navigator.serviceWorker.controller) offer(worker);
      } else if (worker.state === 'redundant' && !installed) {
        failed(state.sw.reason || 'the service worker could not cache the demo’s files');
      }
    };
    worker.addEventListener('statechange', changed);
    if (worker.state !== 'installing') changed();
  };
  if (reg.waiting && navigator.serviceWorker.controller) offer(reg.waiting);
  track(reg.installing);
  reg.addEventListener('updatefound', () => track(reg.installing));
}

/** An update waits until the user asks for it ("Reload"). If another tab accepted it meanwhile,
 * this page is already controlled by it: the button reloads. */
function offer(worker) {
  $('update').hidden = false;
  $('update-btn').onclick = () => {
    state.reloading = true;
    if (worker.state === 'installed') worker.postMessage({ type: 'SKIP_WAITING' }); // controllerchange reloads
    else location.reload();
  };
}

function show(reason) {
  state.sw.error = reason;
  document.documentElement.dataset.offlineError = reason;
  renderNet();
}

function failed(reason) {
  show(reason);
  retryServiceWorker(SW_RETRY_MS[Math.min(state.sw.retries, SW_RETRY_MS.length - 1)]);
  state.sw.retries += 1;
}

/** Tries the precache again: reg.update() while the registration lives (a failed update); a failed
 * first install removes the registration, so then a new register(). */
function retryServiceWorker(delay) {
  clearTimeout(state.sw.timer);
  state.sw.timer = setTimeout(async () => {
    if (!navigator.onLine) return; // the 'online' event tries again
    const { reg } = state.sw;
    try {
      if (reg && reg.active) await reg.update();
      else watch(await navigator.serviceWorker.register('sw.js', SW_OPTIONS));
    } catch (err) {
      failed(err.message);
    }
  }, delay);
}

// ---------------------------------------------------------------------------------------------

/** What the page's address asks for: `{ arms }`, `{ follow }` or `{}`; a parameter it cannot use
 * is an INVALID_PARAMETER naming it, not a page stuck loading or one that quietly ignores it. */
function fromAddress(params) {
  const bad = (message) => Object.assign(new Error(message), { code: 'INVALID_PARAMETER' });
  const has = (k) => params.has(k);
  // Only what the Content-Security-Policy's connect-src lets the page fetch (index.html): a URL
  // it refuses would fail as a bare "Failed to fetch".
  const url = (k) => {
    const v = params.get(k);
    let u;
    try {
      u = new URL(v, document.baseURI);
    } catch {
      throw bad(`?${k}= is not a URL: ${JSON.stringify(v)}`);
    }
    if (!v.trim()) throw bad(`?${k}= is empty: give the URL of an artifact or of a publish pointer`);
    const loopback = u.protocol === 'http:' && ['127.0.0.1', 'localhost'].includes(u.hostname);
    if (u.origin !== location.origin && u.protocol !== 'https:' && !loopback) {
      throw bad(`?${k}=${u.href}: this page fetches https URLs, its own host’s, and plain http only from this machine (127.0.0.1, localhost): ${u.protocol === 'http:' ? 'use https for another host' : `${u.protocol} URLs are refused`}`);
    }
    return u.href;
  };
  if (has('champion') !== has('challenger')) {
    const [given, missing] = has('champion') ? ['champion', 'challenger'] : ['challenger', 'champion'];
    throw bad(`?${given}= needs &${missing}= too: the page runs a champion and a challenger side by side (one model from a URL: ?pointer=)`);
  }
  if (has('pointer') && has('champion')) throw bad('?pointer= and ?champion=&challenger= are two ways to open the page: give one');
  if (!has('pointer') && !has('champion')) {
    const stray = ['key', 'interval'].filter(has);
    if (stray.length) throw bad(`${stray.map((k) => `&${k}=`).join(' and ')} go with ?pointer= or ?champion=&challenger=, which the address does not give`);
    return {};
  }
  let interval = 5;
  if (has('interval')) {
    interval = Number(params.get('interval'));
    if (!(interval > 0)) throw bad(`&interval= is a number of seconds, got ${JSON.stringify(params.get('interval'))}`);
    interval = Math.min(Math.max(interval, MIN_INTERVAL_S), 86400);
  }
  const followed = { publicKey: params.get('key') || undefined, interval };
  if (has('pointer')) return { follow: { url: url('pointer'), ...followed } };
  return { arms: { urls: { champion: url('champion'), challenger: url('challenger') }, ...followed } };
}

async function main() {
  registerServiceWorker();
  try {
    Object.assign(state, fromAddress(new URLSearchParams(location.search)));
  } catch (err) {
    $('load').dataset.state = 'error';
    setProgress(0, 1, 'The page’s address asks for something it cannot do.');
    showError(err, 'Could not read the page’s address');
    document.documentElement.dataset.state = 'error';
    return;
  }
  // The list of models downloads while the engine starts (there is no <link rel=preload> for it:
  // champion and challenger do not use it, and Chromium warns of an unused preload).
  const listed = state.arms ? null : fetchJson('models/index.json');
  listed?.catch(() => {}); // awaited below, after the engine
  const t0 = performance.now();
  try {
    state.skedge = await import('./vendor/skedge/browser.js');
    await state.skedge.init();
  } catch (err) {
    $('load').dataset.state = 'error';
    setProgress(0, 1, 'The engine did not start.');
    showError(err.code ? err : Object.assign(err, { code: 'LOAD_FAILED' }), 'Could not start skedge');
    document.documentElement.dataset.state = 'error';
    return;
  }
  $('t-init').textContent = `${fmtMs(performance.now() - t0)} · WebAssembly compiled`;
  try {
    // Champion and challenger come from the URL, not from models/.
    state.index = state.arms
      ? { models: [{ id: 'experiment', label: 'Champion and challenger', examples: [] }] }
      : checkIndex(await listed);
  } catch (err) {
    showError(err, 'Could not list the models');
    document.documentElement.dataset.state = 'error';
    return;
  }
  const select = $('model');
  select.replaceChildren(...state.index.models.map((m) => el('option', { value: m.id, text: m.label })));
  select.disabled = false;
  select.addEventListener('change', () => pick(select.value));
  $('text').addEventListener('input', typed);
  addEventListener('hashchange', () => {
    const id = fragment();
    if (id && id !== state.entry.id && state.index.models.some((m) => m.id === id)) pick(id);
  });
  await pick(fragment());
}

/** The model named by the URL's #fragment, or '' (then the first): `#%` is no valid escape. */
function fragment() {
  try {
    return decodeURIComponent(location.hash.slice(1));
  } catch {
    return '';
  }
}

/** selectModel, with any failure it did not expect shown rather than leaving the page loading. */
function pick(id) {
  return selectModel(id).catch((err) => {
    showError(err, 'Could not show this model');
    document.documentElement.dataset.state = 'error';
  });
}

main();
