// The parity fixtures as the JS tests see them: SKEDGE_CASES is a directory with, per case,
// `<case>.skedge` (packed by `skedge pack` from tests/fixtures/cases/<case>.interchange.json) and
// `<case>.expected.jsonl` (scikit-learn's outputs). scripts/test_js.sh prepares it.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Model } from 'skedge';

export const PROBA_TOLERANCE = 1e-12;

export function casesDir() {
  const dir = process.env.SKEDGE_CASES;
  if (!dir) throw new Error('SKEDGE_CASES is not set: run scripts/test_js.sh');
  return dir;
}

/**
 * Every case: { name, artifact (path), bytes (Uint8Array), decisionIsProba, expected: [{ text,
 * label, decision, proba }] }. `decisionIsProba`: CalibratedClassifierCV and VotingClassifier, whose
 * decision is made of probabilities and is held to the probability tolerance (as `skedge verify` does).
 */
export function loadCases(dir = casesDir()) {
  const names = readdirSync(dir).filter((f) => f.endsWith('.skedge')).map((f) => f.slice(0, -'.skedge'.length)).sort();
  if (names.length === 0) throw new Error(`no *.skedge in ${dir}`);
  return names.map((name) => caseOf(dir, name));
}

function caseOf(dir, name) {
  const bytes = new Uint8Array(readFileSync(join(dir, `${name}.skedge`)));
  const model = Model.fromBytes(bytes);
  const decisionIsProba = ['CalibratedClassifierCV', 'VotingClassifier'].includes(model.info().estimator);
  model.free();
  return {
    name,
    artifact: join(dir, `${name}.skedge`),
    bytes,
    sha256b64: createHash('sha256').update(bytes).digest('base64'),
    sha256hex: createHash('sha256').update(bytes).digest('hex'),
    decisionIsProba,
    expected: readFileSync(join(dir, `${name}.expected.jsonl`), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const { text, label, decision, proba } = JSON.parse(l);
        return { text, label, decision, proba };
      }),
  };
}

/**
 * Why `got` differs from `want` (label and decision bit for bit, proba within 1e-12; a decision
 * that is a probability within 1e-12), or null.
 */
export function mismatch(got, want, decisionIsProba = false) {
  if (got === null || typeof got !== 'object') return `not a prediction: ${JSON.stringify(got)}`;
  if (got.label !== want.label) return `label ${JSON.stringify(got.label)} != ${JSON.stringify(want.label)}`;
  if (!Array.isArray(got.decision) || got.decision.length !== want.decision.length ||
      got.decision.some((v, i) => (decisionIsProba
        ? !(Math.abs(v - want.decision[i]) <= PROBA_TOLERANCE)
        : !Object.is(v, want.decision[i])))) {
    return `decision ${JSON.stringify(got.decision)} != ${JSON.stringify(want.decision)}`;
  }
  if (want.proba === null || got.proba === null) {
    return want.proba === got.proba ? null : `proba ${JSON.stringify(got.proba)} != ${JSON.stringify(want.proba)}`;
  }
  if (got.proba.length !== want.proba.length ||
      got.proba.some((v, i) => !(Math.abs(v - want.proba[i]) <= PROBA_TOLERANCE))) {
    return `proba ${JSON.stringify(got.proba)} != ${JSON.stringify(want.proba)}`;
  }
  return null;
}

/** Throws with the first mismatches of a case `c` (from loadCases); returns the number of texts checked. */
export function assertParity(c, got) {
  const { name, expected, decisionIsProba } = c;
  if (!Array.isArray(got) || got.length !== expected.length) {
    throw new Error(`${name}: ${Array.isArray(got) ? got.length : typeof got} predictions for ${expected.length} texts`);
  }
  const bad = [];
  got.forEach((g, i) => {
    const why = mismatch(g, expected[i], decisionIsProba);
    if (why) bad.push(`  #${i} ${JSON.stringify(expected[i].text.slice(0, 60))}: ${why}`);
  });
  if (bad.length) throw new Error(`${name}: ${bad.length}/${expected.length} differ from scikit-learn:\n${bad.slice(0, 5).join('\n')}`);
  return expected.length;
}

/**
 * `predictBatch(texts, { columnar: true })`'s result as `Prediction[]`, after checking its shape
 * (typed arrays of the right lengths). Works on the object as returned, or as it crossed a
 * structured clone (Chromium's page.evaluate, a Worker's JSON: then typed arrays are plain arrays
 * or index-keyed objects, and `types` says what they were).
 */
export function fromColumnar(c, n) {
  const { labels, labelIndex, decision, proba, width } = c;
  const k = labels.length;
  const arr = (v) => (Array.isArray(v) || ArrayBuffer.isView(v) ? v : Object.values(v));
  const [idx, dec, pro] = [arr(labelIndex), arr(decision), proba === null ? null : arr(proba)];
  if (idx.length !== n) throw new Error(`columnar: ${idx.length} labels for ${n} texts`);
  if (dec.length !== n * width) throw new Error(`columnar: ${dec.length} decision values for ${n} × ${width}`);
  if (pro !== null && pro.length !== n * k) throw new Error(`columnar: ${pro.length} probabilities for ${n} × ${k}`);
  return Array.from({ length: n }, (_, i) => ({
    label: labels[idx[i]],
    decision: Array.from(dec.slice(i * width, (i + 1) * width)),
    proba: pro === null ? null : Array.from(pro.slice(i * k, (i + 1) * k)),
  }));
}

/** The typed array names of a columnar result (`{ labelIndex, decision, proba }`), for checks. */
export function columnarTypes(c) {
  const name = (v) => (v === null ? 'null' : v.constructor.name);
  return { labelIndex: name(c.labelIndex), decision: name(c.decision), proba: name(c.proba) };
}
