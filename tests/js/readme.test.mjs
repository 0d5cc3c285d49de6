// The README snippets run as pasted (STYLE.md: every snippet is a test), against the installed
// package: each fenced block of the package README (as installed: node_modules/skedge/README.md)
// and of the "JavaScript" section of README.md is extracted and run where it belongs, in a fresh
// folder of the test app next to a `model.skedge`: Node, Deno, Bun, Chromium (the page, served on
// 127.0.0.1), `wrangler dev` (wrangler.toml and src/index.js together). A block nobody claims
// fails the test, so a new snippet gets run or is listed in NOT_RUN with the reason.
// The package README's size figures are checked against the installed .wasm files (gzip -9).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadCases } from './lib/cases.mjs';
import { launchChromium, serve } from './lib/serve.mjs';
import { freePort } from './lib/services.mjs';

const ROOT = process.env.SKEDGE_ROOT;
const TMP = process.env.SKEDGE_TMP;
const APP = process.env.SKEDGE_APP ?? dirname(new URL(import.meta.url).pathname);
const pkgDir = dirname(createRequire(import.meta.url).resolve('skedge/package.json'));
const wordCase = loadCases().find((c) => c.name === 'word_tfidf_lr_binary') ?? loadCases()[0];
const golden = join(ROOT, 'tests', 'golden');
const labels = new Set(wordCase.expected.map((e) => JSON.stringify(e.label)));

/** Fenced blocks of a markdown file: { file, heading (the nearest above), lang, code }. */
function blocks(file, text, section) {
  const out = [];
  let heading = '';
  let inSection = section === undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^#{1,6} /.test(line)) {
      heading = line.replace(/^#+ /, '');
      if (section !== undefined && /^## /.test(line)) inSection = heading === section;
    }
    const fence = /^```(\w*)\s*$/.exec(line);
    if (!fence) continue;
    const start = i;
    while (++i < lines.length && lines[i] !== '```');
    if (inSection) out.push({ file, heading, lang: fence[1], code: lines.slice(start + 1, i).join('\n') + '\n' });
  }
  return out;
}

const pkgReadme = blocks('package README', readFileSync(join(pkgDir, 'README.md'), 'utf8'));
const mainReadme = blocks('README.md', readFileSync(join(ROOT, 'README.md'), 'utf8'), 'JavaScript');

/** Blocks that are not run, and why. */
const NOT_RUN = [
  { heading: /^skedge$/, lang: 'sh', why: 'installs from the npm registry; the tests install the packed tarball' },
  { heading: /^Monitoring$/, lang: 'js', why: 'a fragment of code around a model, with a collector (scripts/test_monitor.sh runs the round trip)' },
  { heading: /^Experiments /, lang: 'js', why: 'a fragment around two models, with a collector (experiment.test.mjs flushes to one on 127.0.0.1)' },
];

const claimed = new Set();
function take(list, heading, lang) {
  const found = list.filter((b) => heading.test(b.heading) && b.lang === lang);
  assert.equal(found.length, 1, `one ${lang} block under a heading like ${heading} (found ${found.length})`);
  claimed.add(found[0]);
  return found[0].code;
}

let n = 0;
/** A fresh folder inside the test app (so `skedge` resolves) holding `model.skedge`. */
function folder(model = wordCase.artifact) {
  const dir = join(APP, 'snippets', String(n++));
  mkdirSync(dir, { recursive: true });
  copyFileSync(model, join(dir, 'model.skedge'));
  return dir;
}

function run(cmd, args, cwd, env = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1', ...env } });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} in ${cwd}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Every predicted label the output shows is one of the model's (Node's inspect quotes strings). */
function assertPredicted(out) {
  // Node prints strings in single quotes, Bun in double quotes.
  const seen = [...out.matchAll(/label: ('[^']*'|"[^"]*"|-?\d+)/g)].map((m) => JSON.stringify(/^['"]/.test(m[1]) ? m[1].slice(1, -1) : Number(m[1])));
  assert.ok(seen.length > 0, `a prediction is printed:\n${out}`);
  for (const l of seen) assert.ok(labels.has(l), `${l} is a class of the model`);
}

test('README.md, JavaScript: the snippet runs in Node', () => {
  const dir = folder();
  writeFileSync(join(dir, 'snippet.mjs'), take(mainReadme, /^JavaScript$/, 'js'));
  const out = run(process.execPath, ['snippet.mjs'], dir);
  assertPredicted(out);
  assert.match(out, /integrity: 'sha256-/);
});

test('package README, Node: the snippet runs', () => {
  const dir = folder();
  writeFileSync(join(dir, 'snippet.mjs'), take(pkgReadme, /^Node /, 'js'));
  assertPredicted(run(process.execPath, ['snippet.mjs'], dir));
});

test('package README, Deno: the snippet runs (deno run --allow-read)', () => {
  const dir = folder();
  writeFileSync(join(dir, 'snippet.mjs'), take(pkgReadme, /^Deno$/, 'js'));
  const deno = join(ROOT, 'node_modules', '.bin', 'deno');
  const out = run(deno, ['run', '--quiet', '--allow-read', 'snippet.mjs'], dir, { DENO_NO_UPDATE_CHECK: '1' });
  assert.match(out, /label/);
});

test('package README, Bun: the snippet runs (bun run)', () => {
  const dir = folder();
  writeFileSync(join(dir, 'snippet.mjs'), take(pkgReadme, /^Bun$/, 'js'));
  const bun = join(ROOT, 'node_modules', '.bin', 'bun');
  assertPredicted(run(bun, ['run', 'snippet.mjs'], dir, { BUN_DISABLE_TELEMETRY: '1' }));
});

test('package README, signed and encrypted artifacts: the snippet loads the sealed golden artifact', () => {
  const dir = folder(join(golden, 'tiny.signed-encrypted.skedge'));
  copyFileSync(join(golden, 'test-signing.pub'), join(dir, 'release.pub'));
  writeFileSync(join(dir, 'snippet.mjs'), take(pkgReadme, /^Signed and encrypted artifacts$/, 'js'));
  const key = readFileSync(join(golden, 'test-encryption.key'), 'utf8').trim();
  const out = run(process.execPath, ['snippet.mjs'], dir, { SKEDGE_DECRYPTION_KEY: key });
  assert.match(out, /label: '(pos|neg)'/);
});

test('package README, browser: the page runs in Chromium', async () => {
  const dir = folder();
  writeFileSync(join(dir, 'index.html'), take(pkgReadme, /^Browser /, 'html'));
  const server = await serve({ '/node_modules/': join(APP, 'node_modules'), '/': dir });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const predicted = new Promise((resolve) => {
      page.on('console', async (msg) => {
        const value = await msg.args()[0]?.jsonValue().catch(() => undefined);
        if (value && typeof value === 'object' && 'label' in value) resolve(value);
      });
    });
    await page.goto(`${server.url}/`);
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error(`no prediction logged: ${errors}`)), 60_000));
    const p = await Promise.race([predicted, timeout]);
    assert.ok(labels.has(JSON.stringify(p.label)), JSON.stringify(p));
    assert.equal(await page.evaluate(() => document.characterSet), 'UTF-8');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await server.close();
  }
});

let dev;
after(async () => {
  if (dev && dev.exitCode === null) {
    try { process.kill(-dev.pid, 'SIGTERM'); } catch {}
    const t = setTimeout(() => { try { process.kill(-dev.pid, 'SIGKILL'); } catch {} }, 5000);
    await new Promise((r) => dev.once('exit', r));
    clearTimeout(t);
  }
});

test('package README, Cloudflare Workers: wrangler.toml and src/index.js under wrangler dev', async () => {
  const dir = folder();
  writeFileSync(join(dir, 'wrangler.toml'), take(pkgReadme, /^Cloudflare Workers/, 'toml'));
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src', 'index.js'), take(pkgReadme, /^Cloudflare Workers/, 'js'));
  const wrangler = join(ROOT, 'node_modules', '.bin', 'wrangler');
  const [port, inspector] = [await freePort(), await freePort()];
  const env = { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1' };
  dev = spawn(wrangler, ['dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector),
    '--persist-to', join(TMP, 'wrangler-readme'), '--show-interactive-dev-session=false'],
  { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  dev.stdout.on('data', (d) => (log += d));
  dev.stderr.on('data', (d) => (log += d));
  const base = `http://127.0.0.1:${port}`;
  const post = async (body) => {
    const r = await fetch(base, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
  };
  const deadline = Date.now() + 120_000;
  let first;
  for (;;) {
    if (dev.exitCode !== null) assert.fail(`wrangler dev exited ${dev.exitCode}:\n${log}`);
    try {
      first = await post(JSON.stringify({ text: 'The food was great' }));
      break;
    } catch {}
    assert.ok(Date.now() < deadline, `wrangler dev did not answer within 120 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(first.status, 200, first.body);
  assert.ok(labels.has(JSON.stringify(JSON.parse(first.body).label)), first.body);
  for (const [body, status, code] of [
    ['{"text":5}', 400, 'INVALID_INPUT'],
    ['{}', 400, 'INVALID_INPUT'],
    ['null', 400, 'INVALID_INPUT'],
    ['not json', 400, 'INVALID_INPUT'],
    [JSON.stringify({ text: 'a'.repeat(16 * 1024 * 1024 + 1) }), 413, 'INPUT_TOO_LARGE'],
  ]) {
    const r = await post(body);
    assert.equal(r.status, status, `${body.slice(0, 20)}: ${r.body.slice(0, 300)}`);
    assert.match(r.type, /application\/json/);
    assert.equal(JSON.parse(r.body).error.code, code);
  }
  assert.doesNotMatch(log, /fallthrough/i, `wrangler warned about the rules:\n${log}`);
});

test('package README: the size figures are those of the installed .wasm files (gzip -9)', () => {
  const readme = readFileSync(join(pkgDir, 'README.md'), 'utf8');
  // As scripts/build.sh measures (gzip's deflate packs these files 2-3 % smaller than zlib's).
  const kb = (file) => spawnSync('gzip', ['-9', '-c', join(pkgDir, file)], { maxBuffer: 1 << 26 }).stdout.length / 1000;
  const full = kb('skedge_bg.wasm');
  const lite = kb('skedge_lite_bg.wasm');
  const said = /one WebAssembly module \((\d+) KB gzip; `skedge\/lite`: (\d+) KB/.exec(readme);
  assert.ok(said, 'the README states both sizes');
  // Within 3 %: a figure that drifts further must be measured again (scripts/build.sh prints it).
  assert.ok(Math.abs(Number(said[1]) - full) <= 0.03 * full, `README: ${said[1]} KB, build: ${full.toFixed(1)} KB`);
  assert.ok(Math.abs(Number(said[2]) - lite) <= 0.03 * lite, `README: ${said[2]} KB lite, build: ${lite.toFixed(1)} KB`);
  const compat = /`skedge_lite_bg\.wasm`, (\d+) KB gzip against (\d+) KB/.exec(readme);
  assert.ok(compat && compat[1] === said[2] && compat[2] === said[1], 'the Compatibility section says the same');
});

test('every snippet is run above or listed as not run, with the reason', () => {
  for (const b of [...pkgReadme, ...mainReadme]) {
    if (claimed.has(b)) continue;
    const skip = NOT_RUN.find((s) => s.heading.test(b.heading) && s.lang === b.lang);
    assert.ok(skip, `${b.file}, "${b.heading}": a ${b.lang || 'plain'} block that no test runs:\n${b.code}`);
  }
});
