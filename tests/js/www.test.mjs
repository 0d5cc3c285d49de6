// The offline demo (www/) in headless Chromium, as a visitor gets it. scripts/test_www.sh builds
// a copy of the demo whose models are scikit-learn fixture cases and runs this file with
//   WWW_DIR       the built demo folder
//   FIXTURES_DIR  tests/fixtures (cases/<case>.expected.jsonl: scikit-learn's outputs)
//   SHOTS_DIR     where screenshots go (.work/www); with UPDATE_SCREENSHOT=1 the README's
//                 www/screenshot.png is rewritten too
// Tests: typing gives scikit-learn's label, decision (bit for bit) and probabilities (within
// 1e-12) for every fixture text of every model; switching models; explain highlights; the error
// state; offline reload through the service worker; labels, contrast, 360 px width; screenshots;
// champion and challenger side by side (?champion=&challenger=), with true labels as feedback;
// what the audit of the page found (the error box, a refused text, a bad #fragment, a model still
// downloading, files that are not what scripts/build_www.sh writes, long texts, the
// Content-Security-Policy with a pointer on another origin, a precache that fails, an update
// accepted in another tab, what the service worker answers for other paths, and
// scripts/serve_www.py refusing a folder its precache.js does not describe); and what a first-time
// visitor meets: persistent storage asked for the offline copy (refused, and granted), a URL that
// sends too much (an endless artifact, one announcing 10 GiB, a pointer announcing a larger blob,
// a pointer's endless blob, served by a loopback server), addresses the page cannot use, the page over plain http on another host name,
// and serve_www.py when the browser drops a download.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const WWW = process.env.WWW_DIR;
const FIXTURES = process.env.FIXTURES_DIR || join(ROOT, 'tests/fixtures');
const SHOTS = process.env.SHOTS_DIR || join(ROOT, '.work/www');
const PROBA_TOLERANCE = 1e-12;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const T = 30000; // bounded waits

let server;
let url;
let index;
const profiles = [];

async function browse(options = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'skedge-www-chromium-'));
  profiles.push(dir);
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ARGS,
    viewport: { width: 1280, height: 900 },
    ...options,
  });
  const page = context.pages()[0] || (await context.newPage());
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  return { context, page, errors };
}

const ready = (page, model) =>
  page.waitForFunction((id) => document.documentElement.dataset.state === 'ready' && (!id || document.documentElement.dataset.model === id), model, { timeout: T });
const raw = async (page) => JSON.parse(await page.textContent('#raw'));

function expected(id) {
  return readFileSync(join(FIXTURES, 'cases', `${id}.expected.jsonl`), 'utf8')
    .split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** Why the page's output differs from scikit-learn's, or null. */
function mismatch(got, want) {
  if (got.error) return `error ${got.error.code}: ${got.error.message}`;
  if (got.label !== want.label) return `label ${JSON.stringify(got.label)} != ${JSON.stringify(want.label)}`;
  if (got.decision.length !== want.decision.length || got.decision.some((d, i) => !Object.is(d, want.decision[i]))) {
    // CalibratedClassifierCV's and soft VotingClassifier's decision is their probability: held to the probability tolerance.
    if (!(want.proba && got.decision.every((d, i) => Math.abs(d - want.decision[i]) <= PROBA_TOLERANCE))) {
      return `decision ${JSON.stringify(got.decision)} != ${JSON.stringify(want.decision)}`;
    }
  }
  if ((got.proba === null) !== (want.proba === null)) return `proba ${JSON.stringify(got.proba)} != ${JSON.stringify(want.proba)}`;
  if (want.proba && (got.proba.length !== want.proba.length || got.proba.some((p, i) => !(Math.abs(p - want.proba[i]) <= PROBA_TOLERANCE)))) {
    return `proba ${JSON.stringify(got.proba)} != ${JSON.stringify(want.proba)} (tolerance ${PROBA_TOLERANCE})`;
  }
  return null;
}

async function selectModel(page, id) {
  await page.selectOption('#model', id);
  await ready(page, id);
}

before(async () => {
  assert.ok(WWW, 'WWW_DIR is not set: run scripts/test_www.sh');
  index = JSON.parse(readFileSync(join(WWW, 'models/index.json'), 'utf8'));
  assert.ok(index.models.length >= 2, 'the test build needs at least two models');
  server = spawn('python3', [join(ROOT, 'scripts/serve_www.py'), '--dir', WWW, '--port', '0', '--quiet'], { stdio: ['ignore', 'pipe', 'inherit'] });
  url = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('serve_www.py did not print its URL')), 10000);
    server.stdout.once('data', (d) => { clearTimeout(timer); ok(String(d).trim()); });
    server.once('exit', (code) => fail(new Error(`serve_www.py exited ${code}`)));
  });
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  mkdirSync(SHOTS, { recursive: true });
});

after(() => {
  if (server) server.kill();
  for (const dir of profiles) rmSync(dir, { recursive: true, force: true });
});

test('typing a fixture text gives scikit-learn’s label, decision and probabilities, for every model', { timeout: 300000 }, async () => {
  const { context, page, errors } = await browse();
  try {
    await page.goto(url);
    await ready(page);
    let compared = 0;
    let exact = 0;
    for (const m of index.models) {
      await selectModel(page, m.id);
      const cases = expected(m.id);
      // Real key presses for a few texts...
      for (const want of cases.slice(0, 3)) {
        await page.fill('#text', '');
        await page.locator('#text').pressSequentially(want.text);
        const got = await raw(page);
        assert.equal(got.model, m.id);
        assert.equal(got.chars, want.text.length, 'the textarea holds the text typed');
        assert.equal(mismatch(got, want), null, `${m.id}: typed ${JSON.stringify(want.text)}`);
        compared += 1;
      }
      // ...and every fixture text as an input event (what paste or autocomplete produce).
      const results = await page.evaluate((texts) => {
        const box = document.getElementById('text');
        return texts.map((t) => {
          box.value = t;
          if (box.value !== t) return null; // a textarea normalises line breaks: not this text
          box.dispatchEvent(new Event('input', { bubbles: true }));
          return JSON.parse(document.getElementById('raw').textContent);
        });
      }, cases.map((c) => c.text));
      let skipped = 0;
      results.forEach((got, i) => {
        if (got === null) { skipped += 1; return; }
        assert.equal(got.model, m.id);
        assert.equal(got.chars, cases[i].text.length);
        assert.equal(mismatch(got, cases[i]), null, `${m.id} #${i}: ${JSON.stringify(cases[i].text).slice(0, 200)}`);
        compared += 1;
        if (!got.proba || got.proba.every((p, k) => Object.is(p, cases[i].proba[k]))) exact += 1;
      });
      assert.ok(skipped <= cases.length / 10, `${m.id}: ${skipped} of ${cases.length} texts do not survive a textarea`);
      console.log(`# ${m.id}: ${cases.length - skipped} texts match scikit-learn (${skipped} with CR line breaks skipped)`);
    }
    console.log(`# ${compared} predictions compared, ${exact} with bit-identical probabilities`);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('switching models, examples, explain highlights, error-free', { timeout: 120000 }, async () => {
  const { context, page, errors } = await browse();
  try {
    await page.goto(url);
    await ready(page);
    for (const m of [...index.models].reverse()) {
      await selectModel(page, m.id);
      const man = JSON.parse(readFileSync(join(WWW, 'models', m.manifest), 'utf8'));
      const card = await page.textContent('#card');
      assert.ok(card.includes(man.sha256), `${m.id}: the model card shows the manifest's sha256`);
      assert.ok(card.includes(man.name), `${m.id}: the model card shows the name`);
      assert.match(card, /loaded bytes match the manifest/);
      assert.match(await page.textContent('#t-load'), /ms/);
      // One call, timed to the timer's 0.1 ms (no finer), and not "cold": Model.load predicted once.
      assert.match(await page.textContent('#t-first'), /^(under 0\.1 ms|\d+(\.\d)? ms) · load to first prediction [\d.]+ ms$/);
      assert.equal(page.url().split('#')[1], m.id, 'the URL names the model');
      // Each example button predicts its text.
      const chips = page.locator('#examples .chip');
      assert.ok((await chips.count()) > 0, `${m.id}: examples`);
      await chips.last().click();
      assert.equal(await page.inputValue('#text'), m.examples.at(-1));
      const want = expected(m.id).find((c) => c.text === m.examples.at(-1));
      if (want) assert.equal(mismatch(await raw(page), want), null);
      // The highlight: marks inside the text, and each top feature's first span inside a mark.
      const view = await page.evaluate(() => ({
        marks: [...document.querySelectorAll('#highlight mark.hl')].map((n) => ({ text: n.textContent, pos: n.classList.contains('pos') })),
        highlight: document.getElementById('highlight').textContent,
        rows: document.querySelectorAll('#terms tbody tr').length,
        text: document.getElementById('text').value,
      }));
      assert.ok(view.marks.length > 0, `${m.id}: highlighted features`);
      assert.ok(view.rows > 0, `${m.id}: a table of features`);
      assert.equal(view.highlight, view.text, 'the highlight shows the text unchanged');
      assert.ok(view.marks.some((k) => k.pos) || view.marks.some((k) => !k.pos));
      assert.ok(await page.locator('#terms tbody tr').first().locator('.eff').textContent().then((t) => /[▲▼] [+−]\d/.test(t)));
      // Timings are live.
      assert.match(await page.textContent('#t-predict'), /(µs|ms) median/);
    }
    // Back through the select with the keyboard only.
    await page.focus('#model');
    await page.keyboard.press('ArrowDown');
    await page.waitForFunction(() => document.documentElement.dataset.model === document.getElementById('model').value, null, { timeout: T });
    // An empty text is a valid input (the intercept alone), the explanation says so.
    await page.fill('#text', '');
    assert.match(await page.textContent('#highlight'), /Type something/);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('an artifact that does not match its manifest is refused with INTEGRITY_MISMATCH', { timeout: 60000 }, async () => {
  const { context, page } = await browse({ serviceWorkers: 'block' });
  try {
    const m = index.models[0];
    await page.route(`**/models/${m.file}`, async (route) => {
      const res = await route.fetch();
      const body = Buffer.from(await res.body());
      body[body.length - 1] ^= 1;
      await route.fulfill({ response: res, body });
    });
    await page.goto(`${url}#${m.id}`);
    await page.waitForFunction(() => document.documentElement.dataset.state === 'error', null, { timeout: T });
    const alert = page.getByRole('alert');
    assert.match(await alert.textContent(), /INTEGRITY_MISMATCH/);
    assert.equal(await page.isDisabled('#text'), true, 'no predictions from a refused artifact');
  } finally {
    await context.close();
  }
});

test('after one visit the demo works offline (service worker), and reloads offline', { timeout: 120000 }, async () => {
  const { context, page, errors } = await browse();
  try {
    await page.goto(url);
    await ready(page);
    await page.waitForFunction(() => document.documentElement.dataset.offlineReady === 'true', null, { timeout: T });
    // Online, a path the cache does not hold is the server's answer, not the demo page.
    for (const path of ['no-such-page.html', 'a/b/c']) {
      const res = await page.goto(`${url}${path}`);
      assert.equal(res.status(), 404, `${path}: the server's 404, not the cached page`);
    }
    await page.goto(url);
    await ready(page);
    await context.setOffline(true);
    assert.equal(await page.evaluate(() => fetch(`/not-cached-${Date.now()}`).then(() => 'reached', () => 'offline')), 'offline', 'the network is really off');
    await page.goto(`${url}?from=offline`, { timeout: T });
    await ready(page);
    await page.reload({ timeout: T });
    for (const m of index.models) { // every model comes from the cache, not only the first
      await selectModel(page, m.id);
      const want = expected(m.id)[5];
      await page.fill('#text', want.text);
      assert.equal(mismatch(await raw(page), want), null, `${m.id} offline`);
    }
    assert.match(await page.textContent('#net'), /Offline/);
    assert.match(await page.textContent('#t-load'), /service worker/);
    // Offline, only the page's own address falls back to the cached page (last: this leaves the
    // tab on Chromium's error page).
    await assert.rejects(page.goto(`${url}no-such-page.html`), /ERR_INTERNET_DISCONNECTED|ERR_FAILED/);
    await context.setOffline(false);
    assert.deepEqual(errors.filter((e) => !/net::ERR_INTERNET_DISCONNECTED|net::ERR_FAILED|Failed to fetch|status of 404/.test(e)), []);
  } finally {
    await context.close();
  }
});

test('the folder works from a subpath of a static host (relative URLs, service worker scope)', { timeout: 60000 }, async () => {
  const parent = spawn('python3', [join(ROOT, 'scripts/serve_www.py'), '--dir', dirname(WWW), '--port', '0', '--quiet'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const { context, page, errors } = await browse();
  try {
    const base = await new Promise((ok, fail) => {
      parent.stdout.once('data', (d) => ok(String(d).trim()));
      parent.once('exit', (code) => fail(new Error(`serve_www.py exited ${code}`)));
    });
    const sub = `${base}${WWW.split('/').filter(Boolean).at(-1)}/`;
    await page.goto(`${sub}#${index.models[1].id}`);
    await ready(page, index.models[1].id);
    await page.waitForFunction(() => document.documentElement.dataset.offlineReady === 'true', null, { timeout: T });
    assert.ok(await page.evaluate(() => navigator.serviceWorker.controller.scriptURL.endsWith('/sw.js')));
    assert.equal(new URL(await page.evaluate(() => navigator.serviceWorker.controller.scriptURL)).pathname, new URL(`${sub}sw.js`).pathname);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    parent.kill();
  }
});

test('a new build is offered as an update, and replaces the old cache when accepted', { timeout: 120000 }, async () => {
  const precache = join(WWW, 'precache.js');
  const original = readFileSync(precache, 'utf8');
  const { context, page, errors } = await browse();
  try {
    await page.goto(url);
    await ready(page);
    await page.waitForFunction(() => document.documentElement.dataset.offlineReady === 'true', null, { timeout: T });
    const [oldCache] = await page.evaluate(() => caches.keys());
    // What scripts/build_www.sh does when any file changes: a new version in precache.js.
    writeFileSync(precache, original.replace(/"version": "([0-9a-f]+)"/, '"version": "$1-next"'));
    await page.reload();
    await ready(page);
    await page.waitForSelector('#update:not([hidden])', { timeout: T });
    assert.deepEqual(await page.evaluate(() => caches.keys()).then((k) => k.sort()), [oldCache, `${oldCache}-next`].sort(), 'the new version waits beside the old one');
    await Promise.all([page.waitForEvent('load', { timeout: T }), page.click('#update-btn')]);
    await ready(page);
    await page.waitForFunction((want) => caches.keys().then((k) => k.length === 1 && k[0] === want), `${oldCache}-next`, { timeout: T });
    assert.equal(await page.isHidden('#update'), true);
    assert.deepEqual(errors, []);
  } finally {
    writeFileSync(precache, original);
    await context.close();
  }
});

test('champion and challenger side by side (an artifact and a pointer), true labels as feedback', { timeout: 120000 }, async () => {
  const ids = ['word_tfidf_lr_binary', 'charwb25_tfidf_linearsvc'];
  const [a, b] = ids.map((id) => index.models.find((m) => m.id === id));
  assert.ok(a && b, `the test build needs the fixture models ${ids.join(' and ')}`);
  // The challenger through a publish pointer (FORMAT.md §5) in the served folder, unsigned (no &key=).
  const fleet = join(WWW, 'fleet');
  const bytes = readFileSync(join(WWW, 'models', b.file));
  const sha = createHash('sha256').update(bytes).digest('hex');
  mkdirSync(join(fleet, 'blobs', 'sha256'), { recursive: true });
  mkdirSync(join(fleet, 'pointers', 'demo'), { recursive: true });
  writeFileSync(join(fleet, 'blobs', 'sha256', `${sha}.skedge`), bytes);
  writeFileSync(join(fleet, 'pointers', 'demo', 'challenger.json'), JSON.stringify({
    pointer_version: 1, model: 'demo', alias: 'challenger', version: '7', run_id: '', sha256: sha, size: bytes.length,
    integrity: `sha256-${createHash('sha256').update(bytes).digest('base64')}`, blob: `blobs/sha256/${sha}.skedge`,
    manifest: `blobs/sha256/${sha}.manifest.json`, format_version: 3, generation: 1, previous_sha256: '',
    previous_generation: 0, published_at: '2026-12-03T00:00:00Z', signature: null,
  }));
  const { context, page, errors } = await browse();
  const warnings = [];
  page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
  try {
    await page.goto(url);
    await ready(page);
    assert.equal(await page.isHidden('#arms'), true, 'the demo without parameters has no experiment');
    await page.goto(`${url}?champion=models/${a.file}&challenger=fleet/pointers/demo/challenger.json`);
    const opened = Date.now();
    await ready(page, 'experiment');
    assert.match(await page.textContent('#load-text'), /challenger .*\(pointer version 7, generation 1\)/);
    // No &key=: nothing checked a signature, and the page says so.
    assert.match(await page.textContent('#load-text'), /both unverified \(no key\)/);
    assert.match(await page.textContent('#card'), /unverified \(no key\)/);
    const [wa, wb] = ids.map(expected);
    const picked = wa.map((w, i) => i).filter((i) => !wa[i].text.includes('\r')).slice(0, 12);
    // The true labels: the champion's, except every third text (so both arms make mistakes).
    const truth = (i) => (picked.indexOf(i) % 3 === 0 ? 1 - wa[i].label : wa[i].label);
    for (const i of picked) {
      await page.fill('#text', wa[i].text);
      const got = JSON.parse(await page.textContent('#arms-raw'));
      assert.equal(got.chars, wa[i].text.length);
      assert.equal(mismatch(got.champion, wa[i]), null, `champion #${i}`);
      assert.equal(mismatch(got.challenger, wb[i]), null, `challenger #${i}`);
      await page.click(`#truth button[data-label="${truth(i)}"]`);
    }
    const { totals } = JSON.parse(await page.textContent('#arms-raw'));
    const count = (f) => picked.filter(f).length;
    assert.deepEqual(
      [totals.labelled, totals.pairs, totals.agree, totals.feedback],
      [picked.length, picked.length, count((i) => wa[i].label === wb[i].label), [
        { count: picked.length, correct: count((i) => wa[i].label === truth(i)) },
        { count: picked.length, correct: count((i) => wb[i].label === truth(i)) }]],
      'the experiment\'s numbers are scikit-learn\'s on these texts and labels');
    const stats = await page.textContent('#arms-stats');
    assert.match(stats, new RegExp(`agreement${totals.agree} of ${picked.length}`));
    assert.match(stats, new RegExp(`challenger accuracy${totals.feedback[1].correct} of ${picked.length}`));
    await page.screenshot({ path: join(SHOTS, 'screenshot-arms.png'), fullPage: true });
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      const measured = await contrasts(page, ['.arms-h', '.arm-role', '.arm-model', '.arm-label', '.arm-score', '.truth-h', '.truth .chip', '.arms .note', '.arms .kv dt', '.arms .kv dd']);
      assert.ok(measured.length >= 20, `${scheme}: ${measured.length} text elements measured`);
      assert.deepEqual(measured.filter((c) => c.ratio < 4.5), [], `${scheme}: text under 4.5:1`);
    }
    await page.setViewportSize({ width: 360, height: 780 });
    assert.deepEqual(await overflow(page, 360), [], 'no horizontal scrolling at 360 px');
    console.log(`# champion and challenger: ${picked.length} labelled texts, ${totals.agree} agree, accuracy ${totals.feedback[0].correct} and ${totals.feedback[1].correct}`);
    // Chromium warns of a preload unused a few seconds after the load event (models/index.json once).
    await page.waitForTimeout(Math.max(0, 5000 - (Date.now() - opened)));
    assert.deepEqual(warnings.filter((w) => /preload/.test(w)), [], 'no unused preload');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    rmSync(fleet, { recursive: true, force: true });
  }
});

/** What reaches past `width` px once the page has laid out after the last change (two frames):
 * `[]` when nothing scrolls sideways, else the elements that stick out, to say which. */
async function overflow(page, width) {
  return page.evaluate(async (w) => {
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
    if (document.documentElement.scrollWidth <= w) return [];
    return [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > w + 0.5)
      .slice(0, 8)
      .map((e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}.${e.className} ends at ${Math.round(e.getBoundingClientRect().right)} px: ${JSON.stringify(e.textContent.slice(0, 60))}`);
  }, width);
}

// WCAG relative luminance contrast of a text colour over the nearest opaque background.
async function contrasts(page, selectors) {
  return page.evaluate((sels) => {
    const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const bg = (n) => {
      for (; n; n = n.parentElement) {
        const c = rgb(getComputedStyle(n).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
      }
      return rgb(getComputedStyle(document.body).backgroundColor).slice(0, 3);
    };
    const out = [];
    for (const s of sels) {
      for (const n of document.querySelectorAll(s)) {
        if (!n.textContent.trim() || !n.getClientRects().length) continue;
        const a = lum(rgb(getComputedStyle(n).color)); const b = lum(bg(n));
        out.push({ s, text: n.textContent.trim().slice(0, 30), ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) });
      }
    }
    return out;
  }, selectors);
}

test('accessible: labels, live region, contrast in both schemes, usable at 360 px', { timeout: 120000 }, async () => {
  const { context, page, errors } = await browse({ viewport: { width: 360, height: 780 } });
  try {
    await page.goto(url);
    await ready(page);
    // Keyboard: the first Tab reaches the skip link, which leads to the text box.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.activeElement.id === 'text', null, { timeout: T });
    await page.getByLabel('Model', { exact: true }).selectOption(index.models[1].id);
    await ready(page, index.models[1].id);
    await page.getByLabel(/Text to classify/).fill(index.models[1].examples[0]);
    await page.waitForFunction(() => document.getElementById('announce').textContent.startsWith('Predicted'), null, { timeout: T });
    assert.equal(await page.getAttribute('#announce', 'aria-live'), 'polite');
    assert.deepEqual(await overflow(page, 360), [], 'no horizontal scrolling at 360 px');
    // The longest status, shown while the service worker caches (it once widened the page).
    const status = await page.textContent('#net');
    await page.evaluate(() => { document.getElementById('net').textContent = 'Online · caching for offline use…'; });
    assert.deepEqual(await overflow(page, 360), [], 'no horizontal scrolling at 360 px while caching');
    await page.evaluate((t) => { document.getElementById('net').textContent = t; }, status);
    const sels = ['body', 'label', '.muted', '.hint', '.lede', '.pill', '.chip', '.verdict-sub', '.bar-value', '.bar-label', '.note',
      '.eff.pos', '.eff.neg', '.ok', '.kv dt', '.kv dd', '.load-text', '.terms th', 'h2', '.highlight'];
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      const measured = await contrasts(page, sels);
      const low = measured.filter((c) => c.ratio < 4.5);
      const worst = measured.reduce((a, b) => (b.ratio < a.ratio ? b : a));
      console.log(`# ${scheme}: ${measured.length} text elements, lowest contrast ${worst.ratio.toFixed(2)}:1 (${worst.s})`);
      assert.deepEqual(low, [], `${scheme}: text under 4.5:1`);
    }
    await page.emulateMedia({ colorScheme: 'light' });
    await page.screenshot({ path: join(SHOTS, 'screenshot-360.png'), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('screenshots', { timeout: 60000 }, async () => {
  const { context, page, errors } = await browse({ viewport: { width: 1200, height: 900 }, colorScheme: 'light' });
  try {
    const m = index.models[0];
    await page.goto(`${url}#${m.id}`);
    await ready(page, m.id);
    await page.waitForFunction(() => document.documentElement.dataset.offlineReady === 'true', null, { timeout: T });
    // A returning visit, as most views of the page are: its timings are those of the offline
    // copy, not of a first download racing the service worker's precache.
    await page.reload();
    await ready(page, m.id);
    await page.fill('#text', '');
    await page.locator('#text').pressSequentially(process.env.SCREENSHOT_TEXT || 'Great sound and a beautiful design, but the battery is disappointing.');
    await page.evaluate(() => document.activeElement.blur());
    const path = join(SHOTS, 'screenshot.png');
    await page.screenshot({ path, fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(SHOTS, 'screenshot-dark.png'), fullPage: true });
    if (process.env.UPDATE_SCREENSHOT === '1') {
      copyFileSync(path, join(ROOT, 'www/screenshot.png'));
      console.log('# wrote www/screenshot.png');
    }
    console.log(`# screenshots in ${SHOTS}`);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

// ---------------------------------------------------------------------------------------------
// What the audit of the page found (each test failed before its fix).

const counted = async (page) => Number((await page.textContent('#t-predict')).match(/· (\d+) texts?/)?.[1] ?? 0);

test('a bad #fragment, a refused text, the error box; long texts predict once per frame with cached formatters', { timeout: 120000 }, async () => {
  const { context, page, errors } = await browse({ serviceWorkers: 'block' });
  try {
    // Intl.NumberFormat constructions, counted: the page keeps one per number of digits.
    await context.addInitScript(() => {
      const NF = Intl.NumberFormat;
      let made = 0;
      Intl.NumberFormat = new Proxy(NF, { construct: (t, args) => { made += 1; return new NF(...args); } });
      Object.defineProperty(window, 'numberFormats', { get: () => made });
    });
    // `#%` is no valid percent-encoding: the first model, not a page stuck loading.
    await page.goto(`${url}#%`);
    await ready(page, index.models[0].id);
    const m = index.models[0];
    await page.fill('#text', m.examples[0]);
    for (const t of m.examples.slice(1)) await page.fill('#text', t);
    const made = await page.evaluate(() => window.numberFormats);
    assert.ok(made <= 6, `${made} Intl.NumberFormat made for ${m.examples.length} texts (one per number of digits)`);

    // A text over 16 MiB: refused, and nothing of the previous text's prediction stays.
    assert.notEqual(await page.textContent('#verdict'), '—');
    await page.evaluate(() => {
      const box = document.getElementById('text');
      box.value = 'terrible awful '.repeat(Math.ceil((17 << 20) / 15));
      box.dispatchEvent(new Event('input', { bubbles: true }));
    });
    await page.waitForFunction(() => /INPUT_TOO_LARGE/.test(document.getElementById('raw').textContent), null, { timeout: T });
    const view = await page.evaluate(() => ({
      nodes: [...document.getElementById('error').childNodes].map((n) => (n.nodeType === 1 ? n.tagName : `text ${JSON.stringify(n.textContent)}`)),
      error: document.getElementById('error').textContent,
      verdict: document.getElementById('verdict').textContent,
      bars: document.getElementById('bars').children.length,
      highlight: document.getElementById('highlight').textContent,
      rows: document.querySelectorAll('#terms tbody tr').length,
    }));
    assert.deepEqual(view.nodes, ['P', 'P', 'P'], 'the error box: heading, message, hint, no "null"');
    assert.doesNotMatch(view.error, /null/);
    assert.match(view.error, /INPUT_TOO_LARGE/);
    assert.deepEqual([view.verdict, view.bars, view.highlight, view.rows], ['—', 0, '', 0], 'no stale prediction');
    await page.fill('#text', m.examples[0]);
    assert.equal(await page.isHidden('#error'), true);
    assert.equal((await raw(page)).chars, m.examples[0].length);

    // Keys pressed while a long text predicts (five input events in one task): one prediction.
    const before = await counted(page);
    await page.evaluate(() => {
      const box = document.getElementById('text');
      box.value = 'the food was cold and the waiter rude but the view '.repeat(4000);
      for (let k = 0; k < 5; k += 1) {
        box.value += 'x';
        box.dispatchEvent(new Event('input', { bubbles: true }));
      }
    });
    await page.waitForFunction((n) => JSON.parse(document.getElementById('raw').textContent).chars === n, 51 * 4000 + 5, { timeout: T });
    await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
    assert.equal(await counted(page), before + 1, 'five input events on a long text, one prediction');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('switching to a model still downloading shows it loading, not the previous model’s output', { timeout: 60000 }, async () => {
  const { context, page, errors } = await browse({ serviceWorkers: 'block' });
  try {
    const [a, , c] = index.models;
    let release;
    const held = new Promise((done) => { release = done; });
    await page.route(`**/models/${c.file}`, async (route) => { await held; await route.continue(); });
    await page.goto(`${url}#${a.id}`);
    await ready(page, a.id);
    await page.fill('#text', 'great movie');
    assert.equal((await raw(page)).model, a.id);
    await page.selectOption('#model', c.id);
    await page.waitForFunction(() => document.getElementById('load').dataset.state === 'loading', null, { timeout: T });
    await page.fill('#text', 'the worst, terrible, awful film');
    const view = await page.evaluate(() => ({
      raw: document.getElementById('raw').textContent,
      verdict: document.getElementById('verdict').textContent,
      bars: document.getElementById('bars').children.length,
      highlight: document.getElementById('highlight').textContent,
      first: document.getElementById('t-first').textContent,
    }));
    assert.deepEqual(view, { raw: '', verdict: `Loading ${c.label}…`, bars: 0, highlight: '', first: '…' });
    release();
    await ready(page, c.id);
    const got = await raw(page);
    assert.equal(got.model, c.id);
    assert.equal(got.chars, 'the worst, terrible, awful film'.length, 'the text typed while it loaded is predicted');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('models/index.json and manifests that are not what build_www.sh writes are shown as errors', { timeout: 120000 }, async () => {
  const { context, page, errors } = await browse({ serviceWorkers: 'block' });
  try {
    const m = index.models[0];
    const manifest = JSON.parse(readFileSync(join(WWW, 'models', m.manifest), 'utf8'));
    const serve = async (path, body, type = 'application/json') => {
      await page.unrouteAll();
      await page.route(`**/models/${path}`, (route) => route.fulfill({ status: 200, contentType: type, body }));
    };
    const failure = async () => {
      await page.waitForFunction(() => document.documentElement.dataset.state === 'error', null, { timeout: T });
      return page.textContent('#error');
    };
    await serve('index.json', '{"models": "abc"}');
    await page.goto(`${url}#${m.id}`);
    assert.match(await failure(), /Could not list the models.*INVALID_DEMO_FILE.*models\/index\.json has no "models" list/);
    // A host answering a missing file with its HTML page.
    await serve('index.json', '<!doctype html><p>not found</p>', 'text/html');
    await page.reload();
    assert.match(await failure(), /INVALID_DEMO_FILE.*models\/index\.json is not JSON/);
    await serve(m.manifest, JSON.stringify({ ...manifest, parity: { passed: true } }));
    await page.reload();
    assert.match(await failure(), new RegExp(`Could not load.*INVALID_DEMO_FILE.*models/${m.manifest}: "parity.texts" is not a number`));
    // No integrity: the progress line and the card both say the load was not verified.
    const { integrity, ...unpinned } = manifest;
    assert.ok(integrity);
    await serve(m.manifest, JSON.stringify(unpinned));
    await page.reload();
    await ready(page, m.id);
    assert.match(await page.textContent('#load-text'), /not verified on load \(no integrity in the manifest\)/);
    const card = await page.textContent('#card');
    assert.match(card, /not verified on load \(no integrity in the manifest\)/);
    assert.doesNotMatch(card, /integrity checked/);
    assert.deepEqual(errors.filter((e) => !/status of 404/.test(e)), []);
  } finally {
    await context.close();
  }
});

test('Content-Security-Policy: no inline script runs; a pointer on another loopback origin is followed', { timeout: 60000 }, async () => {
  // A publisher on another origin of this machine (as scripts/test_sync.sh's S3 server): the
  // pointer and its blob, with CORS.
  const m = index.models[0];
  const bytes = readFileSync(join(WWW, 'models', m.file));
  const sha = createHash('sha256').update(bytes).digest('hex');
  const files = {
    '/pointers/demo/production.json': JSON.stringify({
      pointer_version: 1, model: 'demo', alias: 'production', version: '7', run_id: '', sha256: sha, size: bytes.length,
      integrity: `sha256-${createHash('sha256').update(bytes).digest('base64')}`, blob: `blobs/sha256/${sha}.skedge`,
      manifest: `blobs/sha256/${sha}.manifest.json`, format_version: 3, generation: 1, previous_sha256: '',
      previous_generation: 0, published_at: '2026-12-03T00:00:00Z', signature: null,
    }),
    [`/blobs/sha256/${sha}.skedge`]: bytes,
  };
  const publisher = createServer((req, res) => {
    const body = files[new URL(req.url, 'http://x').pathname];
    res.writeHead(body ? 200 : 404, { 'access-control-allow-origin': '*', 'cache-control': 'no-cache' });
    res.end(body);
  });
  await new Promise((done) => publisher.listen(0, '127.0.0.1', done));
  const pointer = `http://127.0.0.1:${publisher.address().port}/pointers/demo/production.json`;
  const { context, page, errors } = await browse();
  try {
    await context.addInitScript(() => {
      window.violations = [];
      addEventListener('securitypolicyviolation', (e) => window.violations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    await page.goto(`${url}?${new URLSearchParams({ pointer, interval: '60' })}`);
    await ready(page);
    await page.waitForFunction(() => document.documentElement.dataset.followVersion === '7', null, { timeout: T });
    assert.match(await page.textContent('#load-text'), /version 7, generation 1, unverified \(no key\)/);
    await page.fill('#text', m.examples[0]);
    assert.equal((await raw(page)).chars, m.examples[0].length);
    assert.deepEqual(await page.evaluate(() => window.violations), [], 'the page itself breaks none of its policy');
    const inline = await page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.inlineRan = true';
      document.head.append(s);
      return window.inlineRan ?? false;
    });
    assert.equal(inline, false, 'an injected inline script does not run');
    assert.match((await page.evaluate(() => window.violations)).join(), /script-src/);
    assert.deepEqual(errors.filter((e) => !/Content Security Policy/.test(e)), []);
  } finally {
    await context.close();
    publisher.close();
  }
});

/** A copy of the built demo served on its own origin (its own service worker): { dir, url, stop, stderr }. */
async function servedCopy(edit, extra = []) {
  const dir = mkdtempSync(join(tmpdir(), 'skedge-www-copy-'));
  profiles.push(dir);
  cpSync(WWW, dir, { recursive: true, filter: (src) => !src.includes('/fleet') });
  edit(dir);
  const p = spawn('python3', [join(ROOT, 'scripts/serve_www.py'), '--dir', dir, '--port', '0', '--quiet', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d) => { stderr += d; });
  const base = await new Promise((ok, fail) => {
    p.stdout.once('data', (d) => ok(String(d).trim()));
    p.once('exit', (code) => fail(new Error(`serve_www.py exited ${code}: ${stderr}`)));
  });
  return { dir, url: base, stop: () => p.kill(), stderr: () => stderr };
}

test('a precache that fails says why on the page, and is tried again', { timeout: 90000 }, async () => {
  // A listed file the host does not have (a 404; a dropped connection on a first visit does the same).
  const copy = await servedCopy((dir) => unlinkSync(join(dir, 'icon.svg')), ['--allow-stale']);
  assert.match(copy.stderr(), /WARNING: .* is not the build its service worker caches: .*icon\.svg/);
  const { context, page } = await browse();
  try {
    await page.goto(copy.url);
    await ready(page);
    await page.waitForFunction(() => document.documentElement.dataset.offlineError, null, { timeout: T });
    assert.equal(await page.getAttribute('html', 'data-offline-error'), 'icon.svg: HTTP 404');
    assert.match(await page.textContent('#net'), /offline mode unavailable: icon\.svg: HTTP 404 \(retrying\)/);
    assert.equal(await page.getAttribute('html', 'data-offline-ready'), null);
    // The host gets the file: the next try caches everything, and the page works offline.
    copyFileSync(join(WWW, 'icon.svg'), join(copy.dir, 'icon.svg'));
    await page.waitForFunction(() => document.documentElement.dataset.offlineReady === 'true', null, { timeout: T });
    assert.equal(await page.textContent('#net'), 'Works offline');
    assert.equal(await page.getAttribute('html', 'data-offline-error'), null);
  } finally {
    await context.close();
    copy.stop();
  }
});

test('an update accepted in one tab: the other tab’s Reload button reloads it', { timeout: 120000 }, async () => {
  const precache = join(WWW, 'precache.js');
  const original = readFileSync(precache, 'utf8');
  const { context, page: a, errors } = await browse();
  try {
    await a.goto(url);
    await ready(a);
    await a.waitForFunction(() => document.documentElement.dataset.offlineReady === 'true', null, { timeout: T });
    const b = await context.newPage();
    await b.goto(url);
    await ready(b);
    writeFileSync(precache, original.replace(/"version": "([0-9a-f]+)"/, '"version": "$1-tabs"'));
    await a.reload();
    await ready(a);
    await a.waitForSelector('#update:not([hidden])', { timeout: T });
    await b.waitForSelector('#update:not([hidden])', { timeout: T });
    await Promise.all([a.waitForEvent('load', { timeout: T }), a.click('#update-btn')]);
    await ready(a);
    await b.waitForFunction(() => navigator.serviceWorker.controller?.state === 'activated', null, { timeout: T });
    await Promise.all([b.waitForEvent('load', { timeout: T }), b.click('#update-btn')]);
    await ready(b);
    assert.equal(await b.isHidden('#update'), true);
    assert.deepEqual(errors, []);
  } finally {
    writeFileSync(precache, original);
    await context.close();
  }
});

test('build_www.sh caches the page’s own files, vendor/ and models/; serve_www.py refuses a folder they no longer match', { timeout: 120000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'skedge-www-build-'));
  profiles.push(out);
  // What www/ holds beside the page: the README's images.
  writeFileSync(join(out, 'readme-figure.png'), 'not the page');
  const built = spawnSync(join(ROOT, 'scripts/build_www.sh'), ['--out', out, '--fixtures', index.models[0].id, '--fixtures-dir', FIXTURES], { encoding: 'utf8' });
  assert.equal(built.status, 0, built.stderr);
  const { files } = JSON.parse(readFileSync(join(out, 'precache.js'), 'utf8').match(/= (\{[\s\S]*\});/)[1]);
  assert.deepEqual(files.filter((f) => !f.startsWith('vendor/') && !f.startsWith('models/')),
    ['./', 'app.js', 'icon.svg', 'index.html', 'manifest.webmanifest', 'style.css']);
  assert.ok(files.includes('vendor/skedge/skedge_bg.wasm') && files.includes('models/index.json'));
  const serve = (...extra) => new Promise((done) => {
    const p = spawn('python3', [join(ROOT, 'scripts/serve_www.py'), '--dir', out, '--port', '0', '--quiet', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { p.kill(); done({ served: false, code: 'timeout', stderr }); }, 10000);
    p.stdout.once('data', () => { clearTimeout(timer); p.kill(); done({ served: true, stderr }); });
    p.once('exit', (code) => { clearTimeout(timer); done({ served: false, code, stderr }); });
  });
  assert.equal((await serve()).served, true, 'a fresh build is served');
  // A page file changed after the build (e.g. a git pull): its service worker would keep the old one.
  writeFileSync(join(out, 'app.js'), `${readFileSync(join(out, 'app.js'), 'utf8')}\n// changed\n`);
  const refused = await serve();
  assert.deepEqual([refused.served, refused.code], [false, 1]);
  assert.match(refused.stderr, /is not the build its service worker caches: the files changed since precache\.js was written/);
  assert.match(refused.stderr, new RegExp(`scripts/build_www\\.sh --out ${out}`));
  const anyway = await serve('--allow-stale');
  assert.equal(anyway.served, true);
  assert.match(anyway.stderr, /WARNING/);
  unlinkSync(join(out, 'precache.js'));
  assert.match((await serve()).stderr, /precache\.js is missing/);
});

// ---------------------------------------------------------------------------------------------
// What a first-time visitor meets: the offline copy's storage, a response too large, addresses
// the page cannot use, a plain http address, a dropped download (each test failed before its fix).

/** A publisher on another loopback origin (CORS): `routes[path](req, res)` answers; { url, close }. */
async function publisher(routes) {
  const srv = createServer((req, res) => {
    const route = routes[new URL(req.url, 'http://x').pathname];
    if (!route) {
      res.writeHead(404, { 'access-control-allow-origin': '*' });
      res.end();
      return;
    }
    route(req, res);
  });
  await new Promise((done) => srv.listen(0, '127.0.0.1', done));
  return { url: `http://127.0.0.1:${srv.address().port}`, close: () => { srv.closeAllConnections(); srv.close(); } };
}

/** An unsigned publish pointer (FORMAT.md §5) to `bytes`, announcing `size` bytes. */
function pointerTo(bytes, size = bytes.length) {
  const sha = createHash('sha256').update(bytes).digest('hex');
  return {
    sha,
    json: JSON.stringify({
      pointer_version: 1, model: 'demo', alias: 'production', version: '7', run_id: '', sha256: sha, size,
      integrity: `sha256-${createHash('sha256').update(bytes).digest('base64')}`, blob: `blobs/sha256/${sha}.skedge`,
      manifest: `blobs/sha256/${sha}.manifest.json`, format_version: 3, generation: 1, previous_sha256: '',
      previous_generation: 0, published_at: '2026-12-03T00:00:00Z', signature: null,
    }),
  };
}

test('the offline copy: persistent storage is asked for once it is complete, and shown granted or refused', { timeout: 120000 }, async () => {
  // Without an offline copy (no service worker) nothing is asked, nothing shown.
  {
    const { context, page, errors } = await browse({ serviceWorkers: 'block' });
    try {
      await page.goto(url);
      await ready(page);
      assert.equal(await page.isHidden('#storage'), true);
      assert.equal(await page.getAttribute('html', 'data-storage'), null);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
  // Headless Chromium refuses persist() to a site it does not know (its answer, not the test's):
  // asked once, after the offline copy is complete; the page says so, and works offline anyway.
  {
    const { context, page, errors } = await browse();
    try {
      await context.addInitScript(() => {
        window.persistCalls = [];
        const persist = StorageManager.prototype.persist;
        StorageManager.prototype.persist = function () {
          window.persistCalls.push(document.documentElement.dataset.offlineReady ?? 'not ready');
          return persist.call(this);
        };
      });
      await page.goto(url);
      await ready(page);
      await page.waitForFunction(() => document.documentElement.dataset.storage, null, { timeout: T });
      assert.equal(await page.getAttribute('html', 'data-storage'), 'best-effort');
      assert.deepEqual(await page.evaluate(() => window.persistCalls), ['true'], 'asked once, with the offline copy complete');
      assert.equal(await page.evaluate(() => navigator.storage.persisted()), false);
      assert.match(await page.textContent('#storage'), /^Storage: best-effort \(the browser did not grant persistent storage\)\. It may clear the offline copy when disk space runs low; the next visit online caches it again\.$/);
      assert.equal(await page.isVisible('#storage'), true);
      await context.setOffline(true);
      await page.reload({ timeout: T });
      await ready(page);
      await page.waitForFunction(() => document.documentElement.dataset.storage === 'best-effort', null, { timeout: T });
      assert.match(await page.textContent('#net'), /Offline — running from the cache/);
      await context.setOffline(false);
      assert.deepEqual(errors.filter((e) => !/net::ERR_INTERNET_DISCONNECTED|net::ERR_FAILED|Failed to fetch/.test(e)), []);
    } finally {
      await context.close();
    }
  }
  // Granted (as Chromium does for an installed or bookmarked site; here through the DevTools
  // protocol's permission): persistent.
  {
    const { context, page, errors } = await browse();
    try {
      const cdp = await context.newCDPSession(page);
      await cdp.send('Browser.grantPermissions', { origin: new URL(url).origin, permissions: ['durableStorage'] });
      await page.goto(url);
      await ready(page);
      await page.waitForFunction(() => document.documentElement.dataset.storage, null, { timeout: T });
      assert.equal(await page.getAttribute('html', 'data-storage'), 'persistent');
      assert.equal(await page.evaluate(() => navigator.storage.persisted()), true);
      assert.equal(await page.textContent('#storage'), 'Storage: persistent. The browser keeps the offline copy even when disk space runs low.');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
});

test('a URL that sends too much is read at most 128 MiB (maxBytes): ARTIFACT_TOO_LARGE, and the download stops', { timeout: 180000 }, async () => {
  const LIMIT = 128 * 1048576;
  const SAFETY = 3 * LIMIT; // the server's own end, should the page read on
  const good = readFileSync(join(WWW, 'models', index.models[0].file));
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const streams = [];
  /** A body (chunked, unless `headers` give a length) that goes on until the client stops reading. */
  const endless = (req, res, headers = {}) => {
    const s = { sent: 0, closed: null };
    s.closed = new Promise((done) => res.on('close', () => done(s.sent)));
    streams.push(s);
    res.writeHead(200, { 'access-control-allow-origin': '*', 'content-type': 'application/octet-stream', ...headers });
    const pump = () => {
      while (s.sent < SAFETY) {
        s.sent += chunk.length;
        if (!res.write(chunk)) return;
      }
      res.end();
    };
    res.on('drain', pump);
    pump();
  };
  const { sha } = pointerTo(good);
  let announced = 2 ** 31 - 1; // the size the pointer gives its blob
  const pub = await publisher({
    '/good.skedge': (req, res) => { res.writeHead(200, { 'access-control-allow-origin': '*' }); res.end(good); },
    '/endless.skedge': endless,
    // Announces 10 GiB from another origin: a length the page cannot take for the body's (it may
    // be a compressed one), so, exposed or not, it refuses nothing unread: read, and cut at 128 MiB.
    '/lying.skedge': (req, res) => endless(req, res, { 'access-control-expose-headers': 'content-length', 'content-length': String(10 * 2 ** 30) }),
    // A pointer (unsigned) announcing `announced` bytes for a blob that never ends.
    '/pointers/demo/production.json': (req, res) => {
      res.writeHead(200, { 'access-control-allow-origin': '*' });
      res.end(pointerTo(good, announced).json);
    },
    [`/blobs/sha256/${sha}.skedge`]: endless,
  });
  const { context, page, errors } = await browse();
  try {
    const failure = async (query) => {
      await page.goto(`${url}?${new URLSearchParams(query)}`);
      await page.waitForFunction(() => document.documentElement.dataset.state === 'error', null, { timeout: 60000 });
      return page.textContent('#error');
    };
    const limit = '134217728 bytes'; // 128 MiB, the page's maxBytes
    const cases = [
      [{ champion: `${pub.url}/endless.skedge`, challenger: `${pub.url}/good.skedge` },
        new RegExp(`ARTIFACT_TOO_LARGEcould not load ${pub.url}/endless\\.skedge: its body is over maxBytes \\(${limit}\\)`)],
      [{ champion: `${pub.url}/good.skedge`, challenger: `${pub.url}/lying.skedge` },
        new RegExp(`ARTIFACT_TOO_LARGEcould not load ${pub.url}/lying\\.skedge: its body is over maxBytes \\(${limit}\\)`)],
      // Refused from the pointer: its blob is not requested.
      [{ pointer: `${pub.url}/pointers/demo/production.json`, interval: '60' },
        new RegExp(`ARTIFACT_TOO_LARGEthe pointer ${pub.url}/pointers/demo/production\\.json names a blob of 2147483647 bytes, over maxBytes \\(${limit}\\)`)],
    ];
    for (const [query, want] of cases) {
      const before = streams.length;
      const shown = await failure(query);
      assert.match(shown, want);
      assert.match(shown, /stops reading a URL at 128 MiB/, 'the hint');
      if (query.pointer) {
        assert.equal(streams.length, before, 'the blob was not requested');
        continue;
      }
      const s = streams.at(-1);
      const sent = await s.closed;
      // Chromium reads ahead of the page by a few MiB of buffers: the bound is the page's, not the socket's.
      assert.ok(sent < LIMIT + 32 * 1048576, `${Object.values(query)[0]}: the page stopped the download (${sent} bytes sent)`);
      console.log(`# ${Object.values(query).join(' ')}: the host sent ${(sent / 1048576).toFixed(0)} MiB before the page closed the connection`);
    }
    assert.equal(streams.length, 2);
    // A pointer announcing the size of a real artifact, whose blob never ends: read no further
    // than that size (the package's bound), refused, and the download stopped.
    announced = good.length;
    const shown = await failure({ pointer: `${pub.url}/pointers/demo/production.json`, interval: '60' });
    assert.match(shown, new RegExp(`INTEGRITY_MISMATCHblob blobs/sha256/${sha}\\.skedge has \\d+ bytes, the pointer says ${good.length}`));
    assert.equal(streams.length, 3);
    const sent = await streams.at(-1).closed;
    assert.ok(sent < good.length + 32 * 1048576, `the page stopped the download (${sent} bytes sent)`);
    // The same page still loads what fits, from the same host.
    await page.goto(`${url}?${new URLSearchParams({ champion: `${pub.url}/good.skedge`, challenger: `${pub.url}/good.skedge` })}`);
    await ready(page, 'experiment');
    assert.deepEqual(errors.filter((e) => !/Failed to load resource|net::ERR_/.test(e)), []);
  } finally {
    await context.close();
    pub.close();
  }
});

test('an address the page cannot use says so (INVALID_PARAMETER); a pointer is polled at most once a second', { timeout: 120000 }, async () => {
  const m = index.models[0];
  const good = readFileSync(join(WWW, 'models', m.file));
  const { sha, json } = pointerTo(good);
  const pub = await publisher({
    '/pointers/demo/production.json': (req, res) => { res.writeHead(200, { 'access-control-allow-origin': '*', 'cache-control': 'no-cache' }); res.end(json); },
    [`/blobs/sha256/${sha}.skedge`]: (req, res) => { res.writeHead(200, { 'access-control-allow-origin': '*' }); res.end(good); },
    // A bucket whose CORS rules do not name the page's origin.
    '/closed/pointers/demo/production.json': (req, res) => { res.writeHead(200); res.end(json); },
  });
  const pointer = `${pub.url}/pointers/demo/production.json`;
  const { context, page, errors } = await browse({ serviceWorkers: 'block' });
  try {
    await context.addInitScript(() => {
      window.violations = [];
      addEventListener('securitypolicyviolation', (e) => window.violations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    const cases = [
      [{ champion: `models/${m.file}` }, /\?champion= needs &challenger= too/],
      [{ challenger: pointer }, /\?challenger= needs &champion= too/],
      [{ champion: 'http://', challenger: `models/${m.file}` }, /\?champion= is not a URL: "http:\/\/"/],
      [{ pointer: '' }, /\?pointer= is empty/],
      [{ pointer: 'http://10.1.2.3:9000/pointers/demo/production.json' }, /plain http only from this machine \(127\.0\.0\.1, localhost\): use https for another host/],
      [{ pointer: 'ftp://127.0.0.1/p.json' }, /ftp: URLs are refused/],
      [{ pointer, champion: `models/${m.file}`, challenger: `models/${m.file}` }, /\?pointer= and \?champion=&challenger= are two ways to open the page: give one/],
      [{ interval: '5' }, /&interval= go with \?pointer= or \?champion=&challenger=/],
      [{ pointer, interval: 'soon' }, /&interval= is a number of seconds, got "soon"/],
    ];
    for (const [query, want] of cases) {
      await page.goto(`${url}?${new URLSearchParams(query)}`);
      await page.waitForFunction(() => document.documentElement.dataset.state === 'error', null, { timeout: T });
      const shown = await page.textContent('#error');
      assert.match(shown, /Could not read the page’s address ?INVALID_PARAMETER/, JSON.stringify(query));
      assert.match(shown, want, JSON.stringify(query));
      assert.match(await page.textContent('#load-text'), /asks for something it cannot do/);
    }
    assert.deepEqual(await page.evaluate(() => window.violations), [], 'nothing fetched that the policy refuses');
    // Other parameters (a cache-buster, a campaign tag) are not the page's business.
    await page.goto(`${url}?utm_source=test#${m.id}`);
    await ready(page, m.id);
    // &interval= under a second is raised to one; the page says how often it checks.
    await page.goto(`${url}?${new URLSearchParams({ pointer, interval: '0.001' })}`);
    await ready(page);
    await page.waitForFunction(() => document.documentElement.dataset.followVersion === '7', null, { timeout: T });
    assert.match(await page.textContent('#load-text'), /version 7, generation 1, unverified \(no key\), checked every 1 s$/);
    assert.deepEqual(errors, []);
    // A host that does not allow the page's origin: the browser says only "Failed to fetch"; the
    // page says what to check (not "if you are offline").
    await page.goto(`${url}?${new URLSearchParams({ pointer: `${pub.url}/closed/pointers/demo/production.json` })}`);
    await page.waitForFunction(() => document.documentElement.dataset.state === 'error', null, { timeout: T });
    const shown = await page.textContent('#error');
    assert.match(shown, /LOAD_FAILED.*Failed to fetch.*Open the URL in a new tab to check it\. A host other than this page’s must allow this page’s origin \(CORS: Access-Control-Allow-Origin/);
    assert.doesNotMatch(shown, /If you are offline/);
  } finally {
    await context.close();
    pub.close();
  }
});

test('over plain http on another host name the page works and says why it has no offline mode', { timeout: 60000 }, async () => {
  const port = new URL(url).port;
  const { context, page, errors } = await browse({ args: [...ARGS, '--host-resolver-rules=MAP skedge-demo.test 127.0.0.1'] });
  try {
    await page.goto(`http://skedge-demo.test:${port}/`);
    await ready(page);
    assert.equal(await page.evaluate(() => window.isSecureContext), false);
    assert.equal(await page.textContent('#net'), 'Online · no offline mode over plain http: open it over https, or on localhost');
    assert.match(await page.textContent('#load-text'), /sha256 verified/, 'the integrity check needs no secure context');
    assert.equal(await page.getAttribute('html', 'data-storage'), null);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('serve_www.py: a download the browser drops is logged, not a traceback', { timeout: 60000 }, async () => {
  const copy = await servedCopy((dir) => writeFileSync(join(dir, 'big.bin'), Buffer.alloc(64 << 20)));
  copy.stop();
  // Its request log on: the dropped download's line is the moment to look.
  const p = spawn('python3', [join(ROOT, 'scripts/serve_www.py'), '--dir', copy.dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d) => { stderr += d; });
  try {
    const base = new URL(await new Promise((ok, fail) => {
      p.stdout.once('data', (d) => ok(String(d).trim()));
      p.once('exit', (code) => fail(new Error(`serve_www.py exited ${code}: ${stderr}`)));
    }));
    const { connect } = await import('node:net');
    await new Promise((done, fail) => {
      const s = connect(Number(base.port), '127.0.0.1', () => s.write(`GET /big.bin HTTP/1.1\r\nHost: ${base.host}\r\n\r\n`));
      s.once('data', () => { s.resetAndDestroy(); done(); });
      s.once('error', fail);
    });
    const deadline = Date.now() + T;
    while (!/client closed the connection|Traceback/.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.doesNotMatch(stderr, /Traceback|Exception occurred/);
    assert.match(stderr, /"GET \/big\.bin HTTP\/1\.1": the client closed the connection \((BrokenPipeError|ConnectionResetError)\)/);
    assert.equal((await fetch(new URL('index.html', base))).status, 200, 'still serving');
  } finally {
    p.kill();
  }
});
