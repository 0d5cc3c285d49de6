// What a .wasm asks V8 to compile when it is instantiated (issue #12): code bytes per function,
// grouped by crate / module path (names: the names-kept target/npm/web/skedge_bg.wasm after
// scripts/build.sh), and the import and export signatures. V8 (Node 20) validates every function
// body when it compiles the module, and compiles one wrapper per distinct import signature and
// one per distinct export signature (benches/PROFILE.md, "Compile and instantiate").
//
//   node scripts/wasm_sizes.mjs WASM [N]            # totals, the N biggest groups and functions (20)
//   node scripts/wasm_sizes.mjs WASM 0 signatures   # totals, then each import and export signature
import { readFileSync } from 'node:fs';

const [file, n = '20', what] = process.argv.slice(2);
const b = readFileSync(file);
let p = 8;
const u32 = () => {
  let r = 0, shift = 0, x;
  do { x = b[p++]; r += (x & 0x7f) * 2 ** shift; shift += 7; } while (x & 0x80);
  return r;
};
const name = () => { const len = u32(); p += len; return b.toString('utf8', p - len, p); };
const valtype = (t) => ({ 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x7b: 'v128', 0x6f: 'externref', 0x70: 'funcref' })[t] ?? t.toString(16);

const types = [], imports = [], funcTypes = [], exports = [], bodies = [], names = new Map();
while (p < b.length) {
  const id = b[p++], end = u32() + p;
  if (id === 1) {
    for (let i = u32(); i > 0; i--) {
      p++; // 0x60
      const params = Array.from({ length: u32() }, () => valtype(b[p++]));
      const results = Array.from({ length: u32() }, () => valtype(b[p++]));
      types.push(`(${params}) -> (${results})`);
    }
  } else if (id === 2) {
    for (let i = u32(); i > 0; i--) {
      const module = name(), field = name(), kind = b[p++];
      if (kind === 0) imports.push({ name: module.startsWith("./") ? field : `${module}.${field}`, sig: types[u32()] });
      else if (kind === 1 || kind === 2) { if (kind === 1) p++; const flags = u32(); u32(); if (flags & 1) u32(); }
      else p += 2; // global: type, mutability
    }
  } else if (id === 3) {
    for (let i = u32(); i > 0; i--) funcTypes.push(u32());
  } else if (id === 7) {
    for (let i = u32(); i > 0; i--) {
      const nm = name(), kind = b[p++], index = u32();
      if (kind === 0) exports.push({ name: nm, sig: index < imports.length ? imports[index].sig : types[funcTypes[index - imports.length]] });
    }
  } else if (id === 10) {
    for (let i = u32(); i > 0; i--) { const len = u32(); bodies.push(len); p += len; }
  } else if (id === 0 && name() === 'name') {
    while (p < end) {
      const sub = b[p++], subEnd = u32() + p;
      if (sub === 1) for (let i = u32(); i > 0; i--) { const index = u32(); names.set(index, name()); }
      p = subEnd;
    }
  }
  p = end;
}

const distinct = (list) => new Map(list.map((x) => [x.sig, list.filter((y) => y.sig === x.sig).map((y) => y.name)]));
const importSigs = distinct(imports), exportSigs = distinct(exports);
const functions = bodies.map((size, i) => ({ size, name: names.get(imports.length + i) ?? `f${imports.length + i}` }));
const code = bodies.reduce((a, c) => a + c, 0);
console.log(`${file}: ${functions.length} functions, ${code} B of code; ${imports.length} imports, ` +
  `${importSigs.size} distinct signatures; ${exports.length} exported functions, ${exportSigs.size} distinct signatures`);

if (what === 'signatures') {
  for (const [title, sigs] of [['imports', importSigs], ['exports', exportSigs]]) {
    console.log(`--- ${title}, by signature`);
    for (const [sig, users] of [...sigs].sort((x, y) => x[1].length - y[1].length)) {
      console.log(`${String(users.length).padStart(3)}  ${sig}  ${users.join(' ')}`);
    }
  }
}

// `skedge::wasm::model::Model::info::h0123…` -> `skedge::wasm`; `<T as core::fmt::Debug>::fmt` -> `core::fmt`.
const group = (fn) => {
  const m = fn.replace(/::h[0-9a-f]{16}$/, '').replace(/\[[0-9a-f]+\]/g, '').match(/^<?&?(?:mut )?([a-z_][a-z_0-9]*)(?:::([a-z_][a-z_0-9]*))?/);
  return m ? m[1] + (m[2] ? `::${m[2]}` : '') : '(other)';
};
const groups = new Map();
for (const f of functions) {
  const g = groups.get(group(f.name)) ?? { size: 0, count: 0 };
  g.size += f.size; g.count++;
  groups.set(group(f.name), g);
}
if (+n > 0) {
  console.log('--- bytes, functions, group');
  for (const [g, { size, count }] of [...groups].sort((x, y) => y[1].size - x[1].size).slice(0, +n)) {
    console.log(`${String(size).padStart(8)} ${String(count).padStart(5)}  ${g}`);
  }
  console.log('--- bytes, function');
  for (const f of functions.sort((x, y) => y.size - x.size).slice(0, +n)) console.log(`${String(f.size).padStart(8)}  ${f.name}`);
}
