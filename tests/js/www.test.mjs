// The offline demo (www/) in headless Chromium, as a visitor gets it. scripts/test_www.sh builds
// a copy of the demo whose models are scikit-learn fixture cases and runs this file with
//   WWW_DIR       the built demo folder
//   FIXTURES_DIR  tests/fixtures (cases/<case>.expected.jsonl: scikit-learn's outputs)
//   SHOTS_DIR     where screenshots go (.work/www); with UPDATE_SCREENSHOT=1 the README's
//                 www/screenshot.png is rewritten too
// Tests: typing gives scikit-learn's label, decision (bit for bit) and probabilities (within
// 1e-12) for every fixture text of every model; switching models; explain highlights; the error
// state; offline reload through the service worker; labels, contrast, 360 px width; screenshots;
// champion and challenger side by side (?champion=&challenger=), with true labels as feedback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
      assert.match(await page.textContent('#t-first'), /(µs|ms) · cold: load to first prediction .*ms/);
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
    await context.setOffline(true);
    assert.equal(await page.evaluate(() => fetch(`/not-cached-${Date.now()}`).then(() => 'reached', () => 'offline')), 'offline', 'the network is really off');
    await page.reload({ timeout: T });
    for (const m of index.models) { // every model comes from the cache, not only the first
      await selectModel(page, m.id);
      const want = expected(m.id)[5];
      await page.fill('#text', want.text);
      assert.equal(mismatch(await raw(page), want), null, `${m.id} offline`);
    }
    assert.match(await page.textContent('#net'), /Offline/);
    assert.match(await page.textContent('#t-load'), /service worker/);
    await context.setOffline(false);
    assert.deepEqual(errors.filter((e) => !/net::ERR_INTERNET_DISCONNECTED|net::ERR_FAILED|Failed to fetch/.test(e)), []);
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
  try {
    await page.goto(url);
    await ready(page);
    assert.equal(await page.isHidden('#arms'), true, 'the demo without parameters has no experiment');
    await page.goto(`${url}?champion=models/${a.file}&challenger=fleet/pointers/demo/challenger.json`);
    await ready(page, 'experiment');
    assert.match(await page.textContent('#load-text'), /challenger .*\(pointer version 7, generation 1\)/);
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
