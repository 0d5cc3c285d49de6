// The part of `Model` written in JS, installed by every entry point on the wasm-bindgen class:
// `predictBatch` packs its texts into one UTF-8 buffer (TextEncoder.encodeInto, no crossing per
// text), crosses into wasm once (`predictPacked`, src/wasm/model.rs) and gets typed arrays back.
// scripts/build.sh derives extend.cjs from this file for the CommonJS entry.
import { skedgeError } from './errors.js';

const encoder = new TextEncoder();
// Reused between calls; a buffer grown past this is dropped after the call.
const KEEP_BYTES = 1 << 20;
let scratch = new Uint8Array(64 * 1024);

function typeName(v) {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

const PREDICT_BATCH_OPTIONS = ['columnar'];

function freed() {
  return skedgeError(
    'MODEL_FREED',
    'this model was freed (free() or Symbol.dispose), or made with `new Model()`: load one with Model.fromBytes() or Model.load()',
  );
}

function invalid(message, index) {
  const e = skedgeError('INVALID_INPUT', message);
  if (index !== undefined) e.index = index;
  return e;
}

/**
 * Installs the JS half of `Model` on the class of a wasm-bindgen glue module (`core`), and the
 * host's synchronous hasher (`hash(algorithm, bytes) -> Uint8Array`, node's `createHash`) when
 * the runtime has one: artifacts are then hashed natively (integrity, signature prehash); and its
 * synchronous Ed25519 verifier (`verify(publicKey, message, signature) -> boolean`, node:crypto):
 * signatures are then checked natively, the wasm's verifier deciding where it gives no verdict.
 */
export function extend(core, hash, verify) {
  if (hash) core.setHasher(hash);
  if (verify) core.setVerifier(verify);
  const { Model } = core;
  let maxTextBytes; // asked once the wasm is instantiated (browsers instantiate later)

  // A freed model (or one made with `new Model()`) has no pointer into wasm memory: wasm-bindgen
  // would throw a bare "null pointer passed to rust". Every method says so with a code instead,
  // and free() twice is a no-op (wasm-bindgen's `Symbol.dispose` calls free()).
  const proto = Model.prototype;
  for (const name of Object.getOwnPropertyNames(proto)) {
    const method = Object.getOwnPropertyDescriptor(proto, name).value;
    if (name === 'constructor' || typeof method !== 'function') continue;
    proto[name] =
      name === 'free'
        ? function free() {
            if (this.__wbg_ptr) method.call(this);
          }
        : {
            // Named after the method, for stack traces; two parameters cover every method.
            [name](a, b) {
              if (!this.__wbg_ptr) throw freed();
              return method.call(this, a, b);
            },
          }[name];
  }
  if (typeof Symbol.dispose === 'symbol') {
    proto[Symbol.dispose] = function dispose() {
      this.free();
    };
  }

  /**
   * `predict` of each text, in order: `Prediction[]`, or with `{ columnar: true }` one object of
   * typed arrays `{ labels, labelIndex, decision, proba, width }` (row `i`'s label is
   * `labels[labelIndex[i]]`, its decision `decision.subarray(i * width, (i + 1) * width)`, its
   * probabilities `proba.subarray(i * labels.length, (i + 1) * labels.length)`).
   */
  Model.prototype.predictBatch = function predictBatch(texts, options) {
    if (!this.__wbg_ptr) throw freed();
    if (!Array.isArray(texts)) throw invalid(`texts must be an array of strings, got ${typeName(texts)}`);
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object' || Array.isArray(options)) {
        throw invalid(`the options of predictBatch must be an object, got ${typeName(options)}`);
      }
      for (const key of Object.keys(options)) {
        if (!PREDICT_BATCH_OPTIONS.includes(key)) {
          throw invalid(`options.${key} is not an option of predictBatch (known: ${PREDICT_BATCH_OPTIONS.join(', ')})`);
        }
      }
    }
    const columnar = options ? options.columnar : undefined;
    if (columnar !== undefined && typeof columnar !== 'boolean') {
      throw invalid(`options.columnar must be a boolean, got ${typeName(columnar)}`);
    }
    const n = texts.length;
    const ends = new Uint32Array(n);
    let buf = scratch;
    let at = 0;
    for (let i = 0; i < n; i++) {
      const t = texts[i];
      if (typeof t !== 'string') throw invalid(`texts[${i}] must be a string, got ${typeName(t)}`, i);
      // At least one UTF-8 byte per UTF-16 code unit: refused before any copy, with the error
      // `predict` gives (and this index).
      if (t.length > (maxTextBytes ??= Model.maxTextBytes())) {
        try {
          this.predict(t);
        } catch (e) {
          e.index = i;
          throw e;
        }
      }
      // At most three UTF-8 bytes per code unit.
      if (buf.length - at < 3 * t.length) {
        const grown = new Uint8Array(Math.max(2 * buf.length, at + 3 * t.length));
        grown.set(buf.subarray(0, at));
        buf = grown;
      }
      at += encoder.encodeInto(t, buf.subarray(at)).written;
      ends[i] = at;
    }
    if (buf.length <= KEEP_BYTES) scratch = buf;
    const c = this.predictPacked(buf.subarray(0, at), ends);
    if (columnar) return c;
    const { labels, labelIndex, decision, proba, width } = c;
    const k = labels.length;
    const out = new Array(n);
    // Plain loops: a subarray per row costs more than the prediction.
    for (let i = 0; i < n; i++) {
      const d = new Array(width);
      for (let j = 0; j < width; j++) d[j] = decision[i * width + j];
      let p = null;
      if (proba !== null) {
        p = new Array(k);
        for (let j = 0; j < k; j++) p[j] = proba[i * k + j];
      }
      out[i] = { label: labels[labelIndex[i]], decision: d, proba: p };
    }
    return out;
  };
  return Model;
}
