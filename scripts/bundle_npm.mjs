// The JS assembly steps of scripts/build.sh that sed cannot do safely, on files of pkg/:
//   node scripts/bundle_npm.mjs lazy-cjs CORE.cjs NAME_bg.wasm   # defer the nodejs glue's instantiation
//   node scripts/bundle_npm.mjs bundle ENTRY.js                  # inline the entry's relative imports
//   node scripts/bundle_npm.mjs bundle-cjs ENTRY.cjs             # inline the entry's relative requires
// Both refuse (exit 1) input they were not written for, rather than emit a broken package.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const [command, file, arg] = process.argv.slice(2);
const fail = (message) => {
  console.error(`build: ${file}: ${message}`);
  process.exit(1);
};

// wasm-bindgen's nodejs glue reads, compiles and instantiates the .wasm when it is required; the
// same statements in `exports.__instantiate(module?)`, which node.cjs calls on first use (with the
// module `init()` compiled, if it did).
function lazyCjs() {
  const eager = [
    `const wasmPath = \`\${__dirname}/${arg}\`;`,
    "const wasmBytes = require('fs').readFileSync(wasmPath);",
    'const wasmModule = new WebAssembly.Module(wasmBytes);',
    'let wasmInstance = new WebAssembly.Instance(wasmModule, __wbg_get_imports());',
    'let wasm = wasmInstance.exports;',
    'wasm.__wbindgen_start();',
  ].join('\n');
  const lazy = `let wasm;
exports.__instantiate = function (wasmModule) {
  if (wasm !== undefined) return;
  wasmModule ??= new WebAssembly.Module(require('fs').readFileSync(\`\${__dirname}/${arg}\`));
  wasm = new WebAssembly.Instance(wasmModule, __wbg_get_imports()).exports;
  wasm.__wbindgen_start();
};`;
  const src = readFileSync(file, 'utf8');
  if (src.split(eager).length !== 2) fail('no longer has the one instantiation node.cjs defers (wasm-bindgen changed?)');
  writeFileSync(file, src.replace(eager, lazy));
}

// One module instead of four: every `import … from './x.js'` of the entry (and of what it imports)
// becomes a function scope run once, in dependency order, whose exports the importer destructures.
// Each module Node's loader (or a browser) resolves, fetches and compiles costs about half a
// millisecond of a cold import. Only the forms the package's modules use are understood.
function bundle() {
  const dir = dirname(file);
  const order = []; // module file names, dependencies first
  const bodies = new Map();
  const varOf = (name) => `__${name.replace(/\W/g, '_')}`;

  // `source` with its relative imports replaced by destructurings of the modules' variables.
  function link(source, from) {
    return source.replace(/^import (.+) from '\.\/([\w.-]+\.js)';$/gm, (_, what, name) => {
      load(name);
      if (what.startsWith('* as ')) return `const ${what.slice(5)} = ${varOf(name)};`;
      const named = /^\{ ([\w, ]+) \}$/.exec(what);
      if (!named) fail(`${from}: cannot bundle \`import ${what}\``);
      return `const { ${named[1]} } = ${varOf(name)};`;
    });
  }

  function load(name) {
    if (bodies.has(name)) return;
    bodies.set(name, null);
    const exports = [];
    let src = readFileSync(join(dir, name), 'utf8');
    src = src.replace(/^export ((?:async )?function|class|const|let) (\w+)/gm, (_, kind, id) => {
      exports.push(id);
      return `${kind} ${id}`;
    });
    src = src.replace(/^export \{ ([\w, ]+) \};$/gm, (_, list) => {
      for (const item of list.split(', ')) {
        const [local, as = local] = item.split(' as ');
        exports.push(as === local ? local : `${as}: ${local}`);
      }
      return '';
    });
    if (/^(export|import) /m.test(src.replace(/^import (.+) from '\.\/[\w.-]+\.js';$/gm, ''))) {
      fail(`${name} has an import or export this bundler does not understand`);
    }
    src = link(src, name);
    bodies.set(name, `// ${name}\nconst ${varOf(name)} = (() => {\n${src}\nreturn { ${exports.join(', ')} };\n})();\n`);
    order.push(name);
  }

  const entry = link(readFileSync(file, 'utf8'), file);
  // The entry's own leading comment stays first; its imports of built-ins stay at the top level.
  const builtins = entry.match(/^import .+ from 'node:[\w/]+';$/gm) ?? [];
  const rest = entry.replace(/^import .+ from 'node:[\w/]+';\n/gm, '');
  const head = /^(\/\/.*\n)+/.exec(rest)?.[0] ?? '';
  writeFileSync(
    file,
    head + builtins.map((l) => `${l}\n`).join('') + order.map((n) => bodies.get(n)).join('') + rest.slice(head.length),
  );
}

// The same for CommonJS: each `require('./x.cjs')` becomes the `module.exports` of a function
// scope run once, dependencies first (a `require` of Node's loader costs about 0.25 ms a file).
function bundleCjs() {
  const dir = dirname(file);
  const order = [];
  const bodies = new Map();
  const varOf = (name) => `__${name.replace(/\W/g, '_')}`;
  const link = (source) =>
    source.replace(/require\('\.\/([\w.-]+\.cjs)'\)/g, (_, name) => {
      load(name);
      return varOf(name);
    });
  function load(name) {
    if (bodies.has(name)) return;
    bodies.set(name, null);
    const src = link(readFileSync(join(dir, name), 'utf8'));
    if (/require\('\.\.?\//.test(src)) fail(`${name} requires a module this bundler does not understand`);
    bodies.set(name, `// ${name}\nconst ${varOf(name)} = (() => {\nconst module = { exports: {} };\nconst exports = module.exports;\n${src}\nreturn module.exports;\n})();\n`);
    order.push(name);
  }
  const entry = link(readFileSync(file, 'utf8'));
  if (/require\('\.\.?\//.test(entry)) fail('requires a module this bundler does not understand');
  // The entry's leading comment and 'use strict' stay first.
  const head = /^(\/\/.*\n)*('use strict';\n)?/.exec(entry)[0];
  writeFileSync(file, head + order.map((n) => bodies.get(n)).join('') + entry.slice(head.length));
}

const commands = { 'lazy-cjs': lazyCjs, bundle, 'bundle-cjs': bundleCjs };
if (!Object.hasOwn(commands, command)) fail(`unknown command ${command}`);
commands[command]();
