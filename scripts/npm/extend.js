// The part of `Model` written in JS, installed by every entry point on the wasm-bindgen class:
// `predictBatch` packs its texts into one UTF-8 buffer (TextEncoder.encodeInto, no crossing per
// text), crosses into wasm once (`predictPacked`, src/wasm/model.rs) and gets typed arrays back.
// scripts/build.sh derives extend.cjs from this file for the CommonJS entry.
import { skedgeError } from './errors.js';

const encoder = new TextEncoder();
// Reused between calls; a buffer grown past this is dropped after the call. A call owns it while
// it packs: a getter of a text that calls predictBatch again (on any model) gets a buffer of its own.
const KEEP_BYTES = 1 << 20;
let scratch = new Uint8Array(64 * 1024);
/** The UTF-8 bytes of one batch, in all: the packed texts and their copy in wasm memory stay bounded. */
const MAX_BATCH_BYTES = 256 << 20;
/** The bytes of one batch's results in wasm memory (its decision values and probabilities). */
const MAX_BATCH_RESULT_BYTES = 1 << 30;
/** The largest artifact a wasm32 `Vec` can hold (2 GiB - 1). */
const MAX_ARTIFACT_BYTES = 2 ** 31 - 1;

/** Characters of a caller's string that a message shows, as src/error.rs `SHOWN_CHARS`: a message
 * must not grow with the input (a server may send it back to its client). */
const SHOWN_CHARS = 200;

/** What a message shows of a caller's string: `[prefix, rest]`, the string and `''` when it is
 * short, else its first `SHOWN_CHARS` code units (never half a surrogate pair) with `…`, and its
 * length. */
function shown(s) {
  if (s.length <= SHOWN_CHARS) return [s, ''];
  const last = s.charCodeAt(SHOWN_CHARS - 1);
  const end = last >= 0xd800 && last <= 0xdbff ? SHOWN_CHARS - 1 : SHOWN_CHARS;
  return [`${s.slice(0, end)}…`, ` (${s.length} characters)`];
}

/** A string as it is, cut: `abc… (10485760 characters)`. */
function cut(s) {
  const [prefix, rest] = shown(String(s));
  return prefix + rest;
}

/** A string as JSON quotes it, cut: `"abc…" (10485760 characters)`. */
function quoted(s) {
  const [prefix, rest] = shown(s);
  return JSON.stringify(prefix) + rest;
}

function typeName(v) {
  try {
    return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
  } catch {
    return typeof v; // a revoked Proxy
  }
}

// Arguments cross into wasm as plain data. User code they carry (a getter, a Proxy's trap, a
// subclass's override) runs here, where what it throws reaches the caller as it is: an exception
// thrown through wasm frames would skip their clean-up (a borrow flag, the stack pointer), and a
// few hundred of them would leave the instance unusable (tests/js/hostile.test.mjs).
const getter = (proto, name) => Object.getOwnPropertyDescriptor(proto, name)?.get;
const TYPED = Object.getPrototypeOf(Uint8Array.prototype);
const VIEW = [getter(TYPED, 'buffer'), getter(TYPED, 'byteOffset'), getter(TYPED, 'byteLength')];
const DATA_VIEW = [getter(DataView.prototype, 'buffer'), getter(DataView.prototype, 'byteOffset'), getter(DataView.prototype, 'byteLength')];
const BUFFER_LENGTHS = [ArrayBuffer, globalThis.SharedArrayBuffer]
  .filter((c) => typeof c === 'function')
  .map((c) => getter(c.prototype, 'byteLength'));

function branded(v, get) {
  try {
    get.call(v);
    return true;
  } catch {
    return false;
  }
}

/**
 * A new `Uint8Array` over the bytes of `v` (any `ArrayBufferView`, an `ArrayBuffer` or a
 * `SharedArrayBuffer`), read through the built-in getters (a subclass's cannot lie about them);
 * `null` for anything else. A detached buffer or one past wasm32's reach is refused.
 */
function bytesOf(v, what) {
  if (v === null || typeof v !== 'object') return null;
  let bytes;
  try {
    if (ArrayBuffer.isView(v)) {
      const [buffer, offset, length] = branded(v, VIEW[0]) ? VIEW : DATA_VIEW;
      bytes = new Uint8Array(buffer.call(v), offset.call(v), length.call(v));
    } else if (BUFFER_LENGTHS.some((get) => branded(v, get))) {
      bytes = new Uint8Array(v);
    } else {
      return null;
    }
  } catch {
    throw invalid(`${what} is a view of a detached ArrayBuffer (transferred or resized away)`);
  }
  if (bytes.length > MAX_ARTIFACT_BYTES) {
    throw skedgeError('INPUT_TOO_LARGE', `${what} has ${bytes.length} bytes, over the ${MAX_ARTIFACT_BYTES} WebAssembly can hold`);
  }
  return bytes;
}

/**
 * An options object (or a record `{ column: text }`) as a new object of its own enumerable
 * properties, read here; a key's bytes (`publicKey`, `decryptionKey`, an array of them) as
 * `bytesOf` gives them. Anything but an object is returned as it is, for the core to refuse.
 */
function plain(o, what) {
  if (o === null || typeof o !== 'object') return o;
  if (isArray(o, what)) return Array.from(o, (v) => plainKey(v, what));
  const out = Object.create(null);
  for (const key of Object.keys(o)) out[key] = key === 'publicKey' || key === 'decryptionKey' ? plainKey(o[key], `${what}.${key}`) : o[key];
  return out;
}

/** A method's argument as it crosses: bytes as they are, any other object `plain`. */
function plainArg(v) {
  return v === null || typeof v !== 'object' || ArrayBuffer.isView(v) ? v : plain(v, 'an argument');
}

/**
 * A text (or record) as it crosses: `plainArg`, but a `String` object (any realm's, or a
 * subclass's: the brand check runs no user code), which `plain` would make a record of its
 * characters, is refused as what it is. A string never gets here on `predict`'s path.
 */
function textArg(v, what) {
  if (v !== null && typeof v === 'object' && branded(v, String.prototype.valueOf)) {
    throw invalid(`${what} must be a primitive string, got a String object (no coercion: pass String(x) or x.valueOf())`);
  }
  return plainArg(v);
}

function plainKey(v, what) {
  if (v === null || typeof v !== 'object') return v;
  return isArray(v, what) ? Array.from(v, (k) => keyOf(k, what)) : keyOf(v, what);
}

/** `Array.isArray`, which throws for a revoked Proxy: refused as such. */
function isArray(v, what) {
  try {
    return Array.isArray(v);
  } catch {
    throw invalid(`${what} is a revoked Proxy`);
  }
}

/** One key: its bytes, a string as it is; any other object as an empty one, which the core refuses
 * by its type as it would the object (a Proxy's traps never run inside wasm). */
function keyOf(v, what) {
  if (v === null || typeof v !== 'object') return v;
  return bytesOf(v, what) ?? Object.create(null);
}

const PREDICT_BATCH_OPTIONS = ['columnar'];

// A model's classes and the widths of its results, asked once.
const SHAPE = Symbol('skedge.shape');

function shapeOf(model) {
  const [labels, width, proba] = model.shape();
  return { labels, width, k: labels.length, proba };
}

function freed() {
  return skedgeError(
    'MODEL_FREED',
    'this model was freed (free() or Symbol.dispose), or made with `new Model()`: load one with Model.fromBytes() or Model.load()',
  );
}

/** `e` with `index` set, when it is an object that takes it; what a caller's getter threw (a
 * string, a frozen Error) passes through as it is, as `predict` passes it. */
function withIndex(e, index) {
  try {
    e.index = index;
  } catch {}
  return e;
}

function invalid(message, index) {
  const e = skedgeError('INVALID_INPUT', message);
  if (index !== undefined) e.index = index;
  return e;
}

/** Bytes of wasm memory every `init()` readies for the first load (`warmMemory`). */
const WARM_MEMORY = 2 << 20;

/**
 * V8 compiles each wasm function on its first call, in baseline code. Loading the 286-byte
 * tests/golden/tiny.skedge (inlined by scripts/build.sh), which predicts once, compiles the load and
 * predict paths, so that the first real load and prediction no longer pay for it: every entry's
 * `init()` / `initSync()` calls this, and workerd's start-up (benches/PROFILE.md, "Import and
 * browser load", "Node: `init()` warms the first calls"). Before it, `warmMemory` fills and
 * checksums 2 MiB of wasm memory: a first load of an artifact up to that size finds its pages
 * mapped and the checksum loop optimised ("A warm-up that readies memory and the checksum").
 * A warm-up must never break initialisation. Returns the bytes (the browser entry warms
 * `Model.load` with them too). `core`: the wasm-bindgen glue module, instantiated.
 */
export function warmUp(core) {
  try {
    core.warmMemory(WARM_MEMORY);
    const tiny = Uint8Array.from(atob('@TINY_SKEDGE_BASE64@'), (c) => c.charCodeAt(0));
    core.Model.fromBytes(tiny).free(); // the load predicts once ("The first predict at load")
    return tiny;
  } catch {
    return undefined;
  }
}

/**
 * node:crypto's Ed25519 verification for the Node entries' `core.setVerifier`, each public key
 * parsed once: OpenSSL's decoding of a key costs about as much as the verification itself (0.36
 * and 0.2-0.3 ms, benches/PROFILE.md "Ed25519 keys parsed once in Node"), which every reload of a
 * model with its pinned key (`Model.follow`, a server's reload) would pay again. `crypto()` gives
 * node:crypto; at most 16 keys are held (an application pins a few).
 */
export function ed25519Verifier(crypto) {
  const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex'); // RFC 8410, then the 32 key bytes
  const keys = new Map();
  return (key, message, signature) => {
    const id = Buffer.from(key).toString('hex'); // `key` is a view of wasm memory: copied
    let object = keys.get(id);
    if (!object) {
      object = crypto().createPublicKey({ key: Buffer.concat([SPKI_ED25519, key]), format: 'der', type: 'spki' });
      if (keys.size >= 16) keys.clear();
      keys.set(id, object);
    }
    return crypto().verify(null, message, object, signature);
  };
}

/**
 * Warms a signed load, for the Node entries' `init()` and `initSync()`: node:crypto (whose load
 * alone costs 2.5-2.9 ms of a fresh process), its SHA-256 and Ed25519, and the wasm's signed load
 * path, with tests/golden/tiny.signed.skedge and its public test key; a server's first signed load
 * then pays none of them (benches/PROFILE.md "A signed first load: SHA-256 instead of SHA-512,
 * and `init()` warms node:crypto"). Elsewhere the
 * wasm would verify this synchronous load itself, in cold code: workerd warms `Model.load` instead.
 */
export function warmSigned(core) {
  try {
    const signed = Uint8Array.from(atob('@TINY_SIGNED_SKEDGE_BASE64@'), (c) => c.charCodeAt(0));
    core.Model.fromBytes(signed, { publicKey: '@TEST_SIGNING_PUB@' }).free();
  } catch {} // skedge/lite has no signatures
}

/**
 * `options.maxBytes` of `what` (Model.load, Model.follow): `MAX_ARTIFACT_BYTES` when absent
 * (`undefined`, `null`), else an integer from 1 to it; anything else is refused here, with the value
 * (src/wasm/model.rs reads it again, without: a float formatted in wasm would grow skedge/lite).
 */
function maxBytesOf(options, what) {
  const v = options !== null && typeof options === 'object' ? options.maxBytes : undefined;
  if (v === undefined || v === null) return MAX_ARTIFACT_BYTES;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_ARTIFACT_BYTES) {
    throw invalid(`options.maxBytes of ${what} must be an integer from 1 to ${MAX_ARTIFACT_BYTES}, got ${typeof v === 'number' ? v : typeName(v)}`);
  }
  return v;
}

/**
 * Guards the methods and getters of a wasm-bindgen class (`proto`) against an object freed
 * (`free()`, `Symbol.dispose`): wasm-bindgen would throw a bare "null pointer passed to rust" from
 * inside wasm, and a few thousand such throws left the instance unusable. Each throws `gone()`
 * instead (`flush` returns it rejected); free() twice is a no-op.
 */
function guardFreed(proto, gone) {
  for (const name of Object.getOwnPropertyNames(proto)) {
    if (name === 'constructor' || name.startsWith('__')) continue;
    const d = Object.getOwnPropertyDescriptor(proto, name);
    const f = d.get ?? d.value;
    if (typeof f !== 'function') continue;
    const guarded =
      name === 'free'
        ? function free() {
            if (this.__wbg_ptr) f.call(this);
          }
        : {
            [name](...args) {
              if (!this.__wbg_ptr) {
                if (name === 'flush') return Promise.reject(gone());
                throw gone();
              }
              return f.apply(this, args);
            },
          }[name];
    Object.defineProperty(proto, name, d.get ? { ...d, get: guarded } : { ...d, value: guarded });
  }
  if (typeof Symbol.dispose === 'symbol') {
    proto[Symbol.dispose] = function dispose() {
      this.free();
    };
  }
}

/**
 * `Model.load`'s source: bytes as `bytesOf` gives them; a URL, a `Request` or a `Response` as it
 * is. A symbol or a bigint, and an object that only claims to be bytes (`Object.create(Uint8Array.prototype)`,
 * a Proxy of a view), are refused here with what they are.
 */
function sourceArg(source) {
  const bytes = bytesOf(source, 'the source');
  if (bytes !== null) return bytes;
  const what = typeof source === 'symbol' || typeof source === 'bigint' ? `a ${typeof source}`
    : source instanceof TYPED.constructor || source instanceof ArrayBuffer || source instanceof DataView ? 'an object posing as bytes (not a real ArrayBuffer or view)'
    : null;
  if (what) throw invalid(`the source of Model.load must be a URL, a Request, a Response or bytes, got ${what}`);
  return source;
}

/**
 * Installs the JS half of `Model` on the class of a wasm-bindgen glue module (`core`). With
 * `instantiate` (the Node entries: it instantiates the wasm once, and throws a coded error when it
 * cannot), every static function of `Model` calls it first: the wasm is compiled on the first
 * call that needs it, not on import.
 */
export function extend(core, instantiate) {
  const { Model } = core;
  let maxTextBytes; // asked once the wasm is instantiated (browsers instantiate later)

  // A freed model (or one made with `new Model()`) has no pointer into wasm memory: wasm-bindgen
  // would throw a bare "null pointer passed to rust". Every method says so with a code instead,
  // and free() twice is a no-op (wasm-bindgen's `Symbol.dispose` calls free()).
  const proto = Model.prototype;
  const { predictString, predicted } = proto;
  for (const name of Object.getOwnPropertyNames(proto)) {
    const method = Object.getOwnPropertyDescriptor(proto, name).value;
    if (name === 'constructor' || typeof method !== 'function') continue;
    // The texts: `inputText`'s first argument (its second names it) and `explain`'s.
    const text = name === 'inputText' || name === 'explain';
    proto[name] =
      name === 'free'
        ? function free() {
            if (this.__wbg_ptr) method.call(this);
          }
        : {
            // Named after the method, for stack traces; two parameters cover every method.
            [name](a, b) {
              if (!this.__wbg_ptr) throw freed();
              const x = text ? textArg(a, name === 'explain' ? 'text' : b) : plainArg(a);
              const y = plainArg(b);
              // A getter of the arguments may have freed this model.
              if (!this.__wbg_ptr) throw freed();
              return method.call(this, x, y);
            },
          }[name];
  }
  if (typeof Symbol.dispose === 'symbol') {
    proto[Symbol.dispose] = function dispose() {
      this.free();
    };
  }

  /**
   * `predict` of one text (or record `{ column: text }`): `{ label, decision, proba }`. The text
   * crosses into wasm once and numbers come back (`predictString`, `predicted`): the object is
   * built here, where it costs no crossing. A record, anything else and a string too large to copy
   * go through the core's checks first (a record's text, or a coded error).
   */
  proto.predict = function predict(text) {
    if (!this.__wbg_ptr) throw freed();
    if (typeof text !== 'string' || text.length > (maxTextBytes ??= Model.maxTextBytes())) {
      text = this.inputText(text, 'text');
    }
    const shape = (this[SHAPE] ??= shapeOf(this));
    const label = shape.labels[predictString.call(this, text)];
    const { width, k } = shape;
    const decision = new Array(width);
    for (let j = 0; j < width; j++) decision[j] = predicted.call(this, j);
    let proba = null;
    if (shape.proba) {
      proba = new Array(k);
      for (let j = 0; j < k; j++) proba[j] = predicted.call(this, width + j);
    }
    return { label, decision, proba };
  };

  /**
   * `predict` of each text (or record `{ column: text }`), in order: `Prediction[]`, or with `{ columnar: true }` one object of
   * typed arrays `{ labels, labelIndex, decision, proba, width }` (row `i`'s label is
   * `labels[labelIndex[i]]`, its decision `decision.subarray(i * width, (i + 1) * width)`, its
   * probabilities `proba.subarray(i * labels.length, (i + 1) * labels.length)`).
   */
  Model.prototype.predictBatch = function predictBatch(texts, options) {
    if (!this.__wbg_ptr) throw freed();
    if (!isArray(texts, 'texts')) throw invalid(`texts must be an array of strings (or records), got ${typeName(texts)}`);
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object' || Array.isArray(options)) {
        throw invalid(`the options of predictBatch must be an object, got ${typeName(options)}`);
      }
      for (const key of Object.keys(options)) {
        if (!PREDICT_BATCH_OPTIONS.includes(key)) {
          throw invalid(`options.${cut(key)} is not an option of predictBatch (known: ${PREDICT_BATCH_OPTIONS.join(', ')})`);
        }
      }
    }
    const columnar = options ? options.columnar : undefined;
    if (columnar !== undefined && typeof columnar !== 'boolean') {
      throw invalid(`options.columnar must be a boolean, got ${typeName(columnar)}`);
    }
    // An array's length, or a Proxy's: checked before anything is allocated for it. The results
    // (8 bytes per decision value and probability) are bounded as the texts are.
    const n = texts.length;
    const shape = (this[SHAPE] ??= shapeOf(this));
    const maxTexts = Math.floor(MAX_BATCH_RESULT_BYTES / (8 + 8 * (shape.width + (shape.proba ? shape.k : 0))));
    if (!Number.isInteger(n) || n < 0) throw invalid(`texts.length must be a non-negative integer, got ${typeof n === 'number' ? n : typeName(n)}`);
    if (n > maxTexts) {
      throw skedgeError('INPUT_TOO_LARGE', `a batch of this model holds at most ${maxTexts} texts (its results at most ${MAX_BATCH_RESULT_BYTES} bytes), got ${n}: split the batch`);
    }
    // Grown as texts are packed: a sparse array's length alone allocates nothing.
    let ends = new Uint32Array(Math.min(n, 1024));
    let buf = scratch ?? new Uint8Array(64 * 1024);
    scratch = null; // this call's until its texts are packed
    let at = 0;
    for (let i = 0; i < n; i++) {
      if (i === ends.length) {
        const grown = new Uint32Array(Math.min(n, 2 * i));
        grown.set(ends);
        ends = grown;
      }
      let t = texts[i];
      if (typeof t !== 'string') {
        // A record `{ column: text }`: the core checks it and returns its text.
        try {
          t = this.inputText(t, `texts[${i}]`);
        } catch (e) {
          throw withIndex(e, i);
        }
      }
      // At least one UTF-8 byte per UTF-16 code unit: refused before any copy, with the error
      // `predict` gives (and this index).
      if (t.length > (maxTextBytes ??= Model.maxTextBytes())) {
        try {
          this.predict(t);
        } catch (e) {
          throw withIndex(e, i);
        }
      }
      // At most three UTF-8 bytes per code unit.
      if (buf.length - at < 3 * t.length) {
        const grown = new Uint8Array(Math.max(at + 3 * t.length, Math.min(2 * buf.length, MAX_BATCH_BYTES)));
        grown.set(buf.subarray(0, at));
        buf = grown;
      }
      at += encoder.encodeInto(t, buf.subarray(at)).written;
      if (at > MAX_BATCH_BYTES) {
        const e = skedgeError('INPUT_TOO_LARGE', `a batch holds at most ${MAX_BATCH_BYTES} bytes of UTF-8 in all; texts[${i}] passes it: split the batch`);
        e.index = i;
        throw e;
      }
      ends[i] = at;
    }
    if (buf.length <= KEEP_BYTES) scratch = buf;
    const [labelIndex, decision, probabilities] = this.predictPacked(buf.subarray(0, at), ends);
    const { labels, width, k, proba: hasProba } = shape;
    const proba = hasProba ? probabilities : null;
    if (columnar) return { labels: labels.slice(), labelIndex, decision, proba, width };
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

  // The first `predict` after a load pays no one-time setup: each load predicts one short text,
  // which compiles the model's own predict path (V8 compiles a wasm function on its first call)
  // and asks its shape, off the path of the first real prediction (benches/PROFILE.md, "The
  // first predict at load"). A few microseconds per load; a warm-up never fails a load.
  const { fromBytes, load } = Model;
  const warm = (model) => {
    try {
      model.predict('warm up');
    } catch {
      // A model that cannot predict this says so on its first real prediction.
    }
    return model;
  };
  Object.assign(Model, {
    fromBytes(bytes, options) {
      const b = bytesOf(bytes, 'bytes');
      if (b === null) throw invalid(`bytes must be a Uint8Array, an ArrayBuffer or an ArrayBufferView, got ${typeName(bytes)}`);
      return warm(fromBytes.call(Model, b, plain(options, 'options')));
    },
    load(source, options) {
      try {
        source = sourceArg(source);
        const bytes = ArrayBuffer.isView(source); // a real Uint8Array now, if bytes at all
        options = plain(options, 'options');
        // Bytes in hand are held to the limit here; a body, as src/wasm/fetch.rs reads it.
        const maxBytes = maxBytesOf(options, 'Model.load');
        if (bytes && source.length > maxBytes) {
          throw skedgeError('INPUT_TOO_LARGE', `the bytes given to Model.load are ${source.length} bytes, over maxBytes (${maxBytes} bytes)`);
        }
        // Bytes arrive in one piece: one report of all of them before they are checked, as a
        // body's last chunk gives it (a progress bar driven for any source reaches its end).
        // Here, not in wasm: no code in the .wasm for it; a non-function is the core's to refuse.
        const onProgress = options?.onProgress;
        if (bytes && typeof onProgress === 'function') {
          onProgress({ loaded: source.length, total: source.length });
        }
      } catch (e) {
        return Promise.reject(e);
      }
      return load.call(Model, source, options).then(warm);
    },
  });
  Model.follow = (source, options) => follow(core, source, options);
  // The endpoint and options of `flush` (a monitor's, an experiment's) cross as plain data too;
  // a freed monitor (or experiment core) says so as a freed model does.
  for (const [cls, what] of [[core.Monitor, 'monitor'], [core.ExperimentCore, 'experiment']]) {
    const flush = cls?.prototype.flush;
    if (!flush) continue;
    const gone = () => skedgeError('MODEL_FREED', `this ${what} was freed (free() or Symbol.dispose)`);
    cls.prototype.flush = function flushPlain(endpoint, options) {
      try {
        endpoint = endpointOf(endpoint);
        options = plain(options, 'options');
      } catch (e) {
        return Promise.reject(e);
      }
      // A getter of the options may have freed it.
      return this.__wbg_ptr ? flush.call(this, endpoint, options) : Promise.reject(gone());
    };
    guardFreed(cls.prototype, gone);
  }
  if (instantiate) {
    for (const name of Object.getOwnPropertyNames(Model)) {
      const f = Model[name];
      if (typeof f !== 'function' || name.startsWith('__')) continue;
      const async = name === 'load' || name === 'follow';
      Model[name] = {
        [name](a, b) {
          try {
            instantiate();
          } catch (e) {
            if (async) return Promise.reject(e);
            throw e;
          }
          return f.call(Model, a, b);
        },
      }[name];
    }
  }
  return { Model, Experiment: experimentClass(core) };
}

/** The base a relative URL is resolved against by `fetch` and `sendBeacon`: a page's (or a web
 * worker's); none in Node, Deno (without `--location`) and Workers. */
function baseUrl() {
  try {
    return globalThis.document?.baseURI ?? globalThis.location?.href;
  } catch {
    return undefined;
  }
}

/**
 * `flush`'s endpoint as it crosses: a sink function as it is, else the collector's URL as a string
 * (a string, or the `href` of a `URL` or `Location`). Anything but an http(s) URL, absolute or
 * relative to the page, is refused here, before the open window is closed: the core would queue
 * the snapshot and retry, as a network error at every flush, a URL that can never work.
 */
function endpointOf(endpoint) {
  if (typeof endpoint === 'function') return endpoint;
  const href = endpoint !== null && typeof endpoint === 'object' ? endpoint.href : endpoint;
  if (typeof href !== 'string') {
    throw invalid(`flush() needs the collector's http(s) URL, or a function, got ${typeName(endpoint)}`);
  }
  let protocol;
  try {
    protocol = new URL(href, baseUrl()).protocol;
  } catch {}
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw invalid(`flush() needs the collector's http(s) URL, or a function: ${quoted(href)} is not one${protocol ? '' : ' (not an absolute URL)'}`);
  }
  return href;
}

const FOLLOW_OPTIONS = ['publicKey', 'intervalSeconds', 'timeoutSeconds', 'onUpdate', 'onError', 'model', 'alias', 'maxBytes'];

/** An `Error` of any realm (`Error.isError` where the runtime has it; `instanceof` otherwise). */
function isError(e) {
  return e instanceof Error || (typeof Error.isError === 'function' && Error.isError(e));
}

/** A thrown value that is not an Error, for a message: a string quoted and cut, else its type. */
function describeThrown(e) {
  return typeof e === 'string' ? quoted(e) : typeName(e);
}

function sizeMismatch(key, got, size) {
  return skedgeError('INTEGRITY_MISMATCH', `blob ${key} has ${got} bytes, the pointer says ${size}`);
}

/** A pointer is a few hundred bytes; the Rust check refuses more than 64 Ki characters anyway. */
const POINTER_MAX_BYTES = 64 * 1024;

/**
 * The `Content-Length` of `res` when it is the length of the body `res` gives, else `null`: the
 * rule of src/wasm/fetch.rs (`framed`, for Model.load), which this JS cannot call. Only a fetched
 * response that shows every header (`type` "basic": same-origin, Node) and no `Content-Encoding`
 * qualifies. A cross-origin one ("cors") hides its encoding, so its length may be the compressed
 * one: of a good body longer than it, or of a body that inflates far past it.
 */
function bodyLength(res) {
  const encoding = res.headers.get('content-encoding');
  if (res.type !== 'basic' || (encoding !== null && encoding.toLowerCase() !== 'identity')) return null;
  const length = res.headers.get('content-length')?.trim();
  return length && /^[0-9]+$/.test(length) ? Number(length) : null;
}

/**
 * The body of `res`, refused (`tooLarge(n)`) as soon as it passes `limit` bytes: a hostile
 * destination cannot make the follower allocate without bound, announced length or not. A length
 * over `limit` refuses it unread only when it is the body's own (`bodyLength`).
 */
async function readCapped(res, limit, tooLarge) {
  const length = bodyLength(res);
  if (length !== null && length > limit) {
    await res.body?.cancel();
    throw tooLarge(length);
  }
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw tooLarge(total);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function pointerTooLarge(where) {
  return (n) => skedgeError('POINTER_INVALID', `the pointer ${where} has ${n} bytes or more, over ${POINTER_MAX_BYTES}`);
}

function hexToBase64(hex) {
  let bin = '';
  for (let i = 0; i < hex.length; i += 2) bin += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
  return btoa(bin);
}

/**
 * The model and alias a pointer's key names, `{ model, alias }` when its last three segments are
 * `pointers/<model>/<alias>.json` (FORMAT.md §5), else `{}`. A URL's segments are percent-decoded
 * one by one (`%2F` stays inside its segment; a malformed escape is kept as it is).
 */
function namesOfKey(segments, decode) {
  if (segments.length < 3) return {};
  const [dir, model, file] = segments.slice(-3).map((s) => {
    if (!decode) return s;
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  return dir === 'pointers' && file.endsWith('.json') ? { model, alias: file.slice(0, -'.json'.length) } : {};
}

/**
 * A pointer source: `read(etag)` gives `{ etag, text }`, or `null` when the pointer is unchanged
 * since `etag`; `blob(key)` gives the bytes of a key of the destination (FORMAT.md §5: the pointer
 * is `pointers/<model>/<alias>.json`, its blob `blobs/sha256/<hex>.skedge`, both under one root);
 * `names` the model and alias its key names, if it is such a key; `shown` the source in messages.
 */
function sourceOf(source, timeoutMs) {
  if (typeof source === 'string' || source instanceof URL) {
    let url;
    try {
      // Relative to the page (or web worker) as `fetch` and `Model.load` take it: `new URL` alone
      // refused `/pointers/m/production.json` in a page, which `Model.load` accepts.
      url = new URL(source, baseUrl());
    } catch {
      throw invalid(`the source of Model.follow is not a URL (absolute, or in a page relative to it): ${quoted(String(source))}`);
    }
    const fail = (what, e) => skedgeError('LOAD_FAILED', `${what}: ${cut(e?.message ?? e)}`, e);
    const shownUrl = cut(url.href);
    // Each request, its body included, ends within the timeout: a server that stops answering
    // fails this poll (LOAD_FAILED, to onError), and the next one is scheduled. Whole
    // milliseconds: Node's AbortSignal.timeout refuses a fraction (timeoutSeconds: 1.0005).
    const get = async (at, what, headers, read) => {
      try {
        const res = await fetch(at, { headers, cache: 'no-store', signal: AbortSignal.timeout(Math.ceil(timeoutMs)) });
        return await read(res);
      } catch (e) {
        throw e?.name === 'SkedgeError' ? e : fail(what, e);
      }
    };
    return {
      names: namesOfKey(url.pathname.split('/'), true),
      shown: shownUrl,
      read(etag) {
        return get(url, `fetching the pointer ${shownUrl}`, etag ? { 'if-none-match': etag } : {}, async (res) => {
          if (res.status === 304) return null;
          if (!res.ok) throw fail(`fetching the pointer ${shownUrl}`, `HTTP ${res.status}`);
          const bytes = await readCapped(res, POINTER_MAX_BYTES, pointerTooLarge(shownUrl));
          return { etag: res.headers.get('etag'), text: new TextDecoder().decode(bytes) };
        });
      },
      blob(key, size) {
        const at = new URL(`../../${key}`, url);
        return get(at, `fetching ${cut(at.href)}`, {}, async (res) => {
          if (!res.ok) throw fail(`fetching ${cut(at.href)}`, `HTTP ${res.status}`);
          // Refused unread when its own length is not the pointer's size; a length that may be
          // a compressed one (content-encoded, cross-origin) decides nothing: the body is read up
          // to the pointer's size, cut as soon as it passes it, and its sha256 decides.
          const length = bodyLength(res);
          if (length !== null && length !== size) {
            await res.body?.cancel();
            throw sizeMismatch(key, length, size);
          }
          return readCapped(res, size, (n) => sizeMismatch(key, n, size));
        });
      },
    };
  }
  // A Workers R2 binding (strongly consistent reads; KV is not, and cannot be the source of truth).
  if (source && typeof source === 'object' && typeof source.bucket?.get === 'function' && typeof source.key === 'string') {
    const { bucket, key } = source;
    const root = key.split('/').slice(0, -3).join('/');
    const fail = (what) => skedgeError('LOAD_FAILED', `${what} is not in the bucket`);
    // `read(object)` of the object `k` names, the whole of it (the get and its body) within the
    // timeout, as a URL's request: a binding that stops answering fails this poll (LOAD_FAILED),
    // and the next one is scheduled. The get itself cannot be aborted; its result is dropped.
    const get = (k, options, read) => {
      let timer;
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(skedgeError('LOAD_FAILED', `reading ${cut(k)} from the bucket: no answer within ${timeoutMs / 1000} s (timeoutSeconds)`)), timeoutMs);
        timer?.unref?.();
      });
      const work = (async () => {
        try {
          return await read(await bucket.get(k, options));
        } catch (e) {
          throw e?.name === 'SkedgeError' ? e : skedgeError('LOAD_FAILED', `reading ${cut(k)} from the bucket: ${cut(e?.message ?? e)}`, e);
        }
      })();
      return Promise.race([work, late]).finally(() => clearTimeout(timer));
    };
    return {
      names: namesOfKey(key.split('/'), false),
      shown: quoted(key),
      read(etag) {
        return get(key, etag ? { onlyIf: { etagDoesNotMatch: etag } } : undefined, async (object) => {
          if (object === null) throw fail(`the pointer ${cut(key)}`);
          if (typeof object.text !== 'function') return null; // precondition failed: unchanged
          if (object.size > POINTER_MAX_BYTES) throw pointerTooLarge(cut(key))(object.size);
          return { etag: object.etag, text: await object.text() };
        });
      },
      blob(blobKey, size) {
        return get(root ? `${root}/${blobKey}` : blobKey, undefined, async (object) => {
          if (object === null) throw fail(blobKey);
          if (object.size !== size) throw sizeMismatch(blobKey, object.size, size);
          return new Uint8Array(await object.arrayBuffer());
        });
      },
    };
  }
  throw invalid(`the source of Model.follow must be a pointer URL or { bucket, key } (an R2 binding), got ${typeName(source)}`);
}

// Model.follow handles -> the model each serves now: an experiment's arm may be either.
const followed = new WeakMap();

const PREDICT_OPTIONS = ['key'];

/**
 * `new Experiment(champion, challenger, options)` (FORMAT.md §4): champion and challenger on the
 * same production text, shadow or canary, with ground-truth feedback. The core is
 * `ExperimentCore` (src/experiment.rs); this class resolves each arm's current model (a `Model`,
 * or the version a `Model.follow` handle serves) at every call, so an alias move replaces an arm
 * in place. skedge/lite leaves experiments out (no monitoring there).
 */
function experimentClass(core) {
  const { Model } = core;
  const armOf = (x, what) => {
    if (x instanceof Model) {
      return () => {
        if (!x.__wbg_ptr) throw freed();
        return x;
      };
    }
    const current = x !== null && typeof x === 'object' ? followed.get(x) : undefined;
    if (current) return current;
    throw invalid(`the ${what} must be a Model or a Model.follow handle, got ${typeName(x)}`);
  };
  return class Experiment {
    #core;
    #champion;
    #challenger;

    constructor(champion, challenger, options) {
      if (!core.ExperimentCore) {
        throw skedgeError('FEATURE_UNAVAILABLE', 'skedge/lite leaves experiments out: import Experiment from "skedge"');
      }
      this.#champion = armOf(champion, 'champion');
      this.#challenger = armOf(challenger, 'challenger');
      // The options first: a getter of theirs may free an arm.
      options = plain(options, 'options');
      this.#core = new core.ExperimentCore(this.#champion(), this.#challenger(), options);
    }

    #live() {
      if (!this.#core) throw skedgeError('MODEL_FREED', 'this experiment was freed (free() or Symbol.dispose)');
      return this.#core;
    }

    /** The served prediction, its `arm` and `id` (for `feedback`), and in shadow mode, for
     * sampled texts, the challenger's prediction as `shadow`. `options.key` assigns the canary
     * arm (sticky: a hash of the key); without it the text is the key. `text` may also be a
     * record `{ [inputColumn]: text }`, as `Model.predict` takes it, when both arms were fitted on
     * that DataFrame column. */
    predict(text, options) {
      this.#live();
      if (options !== undefined && options !== null) {
        if (typeof options !== 'object' || Array.isArray(options)) {
          throw invalid(`the options of predict must be an object, got ${typeName(options)}`);
        }
        for (const key of Object.keys(options)) {
          if (!PREDICT_OPTIONS.includes(key)) {
            throw invalid(`options.${cut(key)} is not an option of Experiment.predict (known: ${PREDICT_OPTIONS.join(', ')})`);
          }
        }
      }
      // The text and key first: a getter of theirs may free an arm, or this experiment.
      text = textArg(text, 'text');
      const key = options?.key;
      return this.#live().predict(this.#champion(), this.#challenger(), text, key);
    }

    /** The true label of prediction `id`: "counted", "expired", "unknown" or "duplicate". */
    feedback(id, label) {
      return this.#live().feedback(id, label);
    }

    /** Closes the open window, queues its snapshot and returns it. */
    snapshot() {
      return this.#live().snapshot();
    }

    /** Takes the closed windows waiting for delivery, oldest first. */
    takePending() {
      return this.#live().takePending();
    }

    /** Delivers the queued windows (and the open one unless `closedOnly`) to a collector URL or
     * a sink function, exactly as `Monitor.flush`: what could not be delivered stays queued, in
     * order, at most 64. Resolves to a `FlushResult`. */
    flush(endpoint, options) {
      try {
        return this.#live().flush(endpoint, options);
      } catch (e) {
        return Promise.reject(e);
      }
    }

    /** Windows waiting for delivery. */
    get pending() {
      return this.#live().pending;
    }

    /** Windows dropped so far because the queue (64) was full. */
    get dropped() {
      return this.#live().dropped;
    }

    /** Frees the experiment (not the models). */
    free() {
      this.#core?.free();
      this.#core = undefined;
    }

    [Symbol.dispose ?? Symbol.for('Symbol.dispose')]() {
      this.free();
    }
  };
}

async function follow(core, source, options) {
  const { Model } = core;
  if (options !== undefined && options !== null) {
    if (typeof options !== 'object' || Array.isArray(options)) {
      throw invalid(`the options of Model.follow must be an object, got ${typeName(options)}`);
    }
    for (const key of Object.keys(options)) {
      if (!FOLLOW_OPTIONS.includes(key)) {
        throw invalid(`options.${cut(key)} is not an option of Model.follow (known: ${FOLLOW_OPTIONS.join(', ')})`);
      }
    }
  }
  const { publicKey, intervalSeconds = 60, timeoutSeconds = 60, onUpdate, onError, model: modelName, alias } = options ?? {};
  for (const [name, v] of [['intervalSeconds', intervalSeconds], ['timeoutSeconds', timeoutSeconds]]) {
    if (typeof v !== 'number' || !(v > 0) || v > 2147483) {
      throw invalid(`options.${name} must be a number of seconds in (0, 2147483], got ${typeof v === 'number' ? v : typeName(v)}`);
    }
  }
  for (const [name, f] of [['onUpdate', onUpdate], ['onError', onError]]) {
    if (f !== undefined && typeof f !== 'function') throw invalid(`options.${name} must be a function, got ${typeName(f)}`);
  }
  for (const [name, v] of [['model', modelName], ['alias', alias]]) {
    if (v !== undefined && typeof v !== 'string') throw invalid(`options.${name} must be a string, got ${typeName(v)}`);
  }
  const maxBytes = maxBytesOf(options, 'Model.follow');
  const from = sourceOf(source, timeoutSeconds * 1000);
  // The model and alias followed: the options', else those the source's key names; the first
  // pointer must name them (the Rust check), and every later one the first one's.
  const names = {};
  for (const [name, v] of [['model', modelName], ['alias', alias]]) {
    const fromKey = from.names[name];
    if (v !== undefined && fromKey !== undefined && v !== fromKey) {
      throw invalid(`options.${name} ${quoted(v)} is not the ${name} ${quoted(fromKey)} of the source ${from.shown}`);
    }
    if ((v ?? fromKey) !== undefined) names[name] = v ?? fromKey;
  }
  const keyOption = publicKey === undefined ? {} : { publicKey: plainKey(publicKey, 'options.publicKey') };
  let model = null;
  let pointer = null;
  let etag = null;
  let timer = null;
  let disposed = false;
  let polling = null;

  // One pass: read the pointer; when it names another blob, check it (Rust: fields, signature,
  // generation), fetch the blob by its key, check its size, sha256 (integrity) and signature
  // while loading, and only then swap. Any refusal leaves the served version as it was.
  async function poll() {
    const read = await from.read(etag);
    if (read === null) return false;
    let next;
    try {
      next = core.checkPointer(read.text, {
        ...keyOption,
        ...(pointer ? { generation: pointer.generation, sha256: pointer.sha256, model: pointer.model, alias: pointer.alias } : names),
      });
    } catch (e) {
      etag = read.etag; // refused for good: reported once, not at every poll
      throw e;
    }
    // Refused before the blob is requested: it is never read past the size the pointer names.
    if (next.size > maxBytes) {
      etag = read.etag;
      throw skedgeError('INPUT_TOO_LARGE', `the pointer ${from.shown} names a blob of ${next.size} bytes, over maxBytes (${maxBytes} bytes)`);
    }
    if (pointer && next.sha256 === pointer.sha256) {
      etag = read.etag;
      pointer = next;
      return false;
    }
    // A refused blob leaves the ETag as it was, whatever the refusal: the next poll reads the
    // pointer again and fetches the blob again (a proxy's error page served with 200 in place of
    // the blob, a failed read, must not block the version until the next publish).
    const bytes = await from.blob(next.blob, next.size);
    if (bytes.length !== next.size) throw sizeMismatch(next.blob, bytes.length, next.size);
    // `load`, not `fromBytes`: outside Node its hashes and signature check run in WebCrypto.
    const loaded = await Model.load(bytes, { ...keyOption, integrity: `sha256-${hexToBase64(next.sha256)}` });
    etag = read.etag;
    if (disposed) {
      loaded.free();
      return false;
    }
    // Predictions are synchronous: none is running while this line swaps the version.
    const old = model;
    model = loaded;
    pointer = next;
    old?.free();
    return true;
  }

  // `onError` is typed `(error: Error)`: refusals and failed reads are coded errors, but
  // `onUpdate` may throw anything; what is not an Error reaches `onError` as the `cause` of one.
  function report(e) {
    if (!onError) return;
    try {
      onError(isError(e) ? e : new Error(`onUpdate threw ${describeThrown(e)} (not an Error)`, { cause: e }));
    } catch {}
  }

  function refresh() {
    if (disposed) return Promise.resolve(false);
    polling ??= poll()
      .then((changed) => {
        if (changed && onUpdate) {
          try {
            onUpdate(handle.info(), { ...pointer });
          } catch (e) {
            report(e);
          }
        }
        return changed;
      })
      .finally(() => {
        polling = null;
      });
    return polling;
  }

  function schedule() {
    if (disposed) return;
    timer = setTimeout(() => {
      refresh().catch(report).finally(schedule);
    }, intervalSeconds * 1000);
    // Node: a follower alone does not keep the process alive.
    timer?.unref?.();
  }

  const current = () => {
    if (disposed) throw skedgeError('MODEL_FREED', 'this Model.follow handle was disposed (dispose() or Symbol.dispose): follow the pointer again');
    return model;
  };
  const handle = {
    predict: (text) => current().predict(text),
    predictBatch: (texts, opts) => current().predictBatch(texts, opts),
    info: () => current().info(),
    /** The pointer being served (FORMAT.md §5 field names). */
    get pointer() {
      return pointer && { ...pointer };
    },
    /** Reads the pointer now; resolves to whether the version changed. Rejects on a refusal. */
    refresh,
    /** Stops polling and frees the served model. */
    dispose() {
      if (disposed) return;
      disposed = true;
      clearTimeout(timer);
      model?.free();
      model = null;
    },
  };
  if (typeof Symbol.dispose === 'symbol') handle[Symbol.dispose] = handle.dispose;
  // skedge/lite's models have no explain: neither has its handle (it threw a bare TypeError).
  if (typeof Model.prototype.explain === 'function') handle.explain = (text, k) => current().explain(text, k);
  followed.set(handle, current);
  await poll(); // the first version: a refusal rejects Model.follow itself
  if (model === null) {
    // "Unchanged" to a read that named no version: a 304 without If-None-Match (a proxy's), an
    // R2 get whose object has no body. A handle that serves nothing would throw TypeErrors.
    throw skedgeError('LOAD_FAILED', `the first read of the pointer ${from.shown} gave no pointer (an answer "unchanged" to a read that named no ETag: HTTP 304, or an R2 object without a body)`);
  }
  schedule();
  return handle;
}
