// Runs a Python script under Pyodide's CPython, compiled to WebAssembly (the npm package `pyodide`,
// pinned in package.json), for a Python version this machine has no native build of: 314.0.7 is
// CPython 3.14.2, whose `unicodedata`, `re` and `str` methods are CPython's own C code and Unicode
// database. Only the standard library is there (Pyodide fetches other packages from the network).
//
//   node scripts/pyodide.mjs SCRIPT [ARG...]
//
// The script's directory is mounted at the same path, so `__file__` and paths relative to the
// working directory mean what they mean natively; stdout and stderr are passed through byte for
// byte, and the exit status is the script's (SystemExit), 1 on an uncaught exception.
import { writeSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { loadPyodide } from "pyodide";

const [script, ...args] = process.argv.slice(2);
if (!script) {
  process.stderr.write("usage: node scripts/pyodide.mjs SCRIPT [ARG...]\n");
  process.exit(2);
}
const raw = (fd) => ({
  write(bytes) {
    writeSync(fd, bytes);
    return bytes.length;
  },
});
const py = await loadPyodide({ stdout: () => {}, stderr: () => {} });
py.setStdout(raw(1));
py.setStderr(raw(2));
const path = resolve(script);
const mounts = [process.cwd()];
if (relative(process.cwd(), path).startsWith("..")) mounts.push(dirname(path));
for (const dir of mounts) {
  py.FS.mkdirTree(dir);
  py.FS.mount(py.FS.filesystems.NODEFS, { root: dir }, dir);
}
py.globals.set("argv", py.toPy([path, ...args]));
py.globals.set("cwd", process.cwd());
process.exitCode = py.runPython(`
import os, runpy, sys, traceback
os.chdir(cwd)
sys.argv = list(argv)
sys.path.insert(0, os.path.dirname(sys.argv[0]))
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
    code = 0
except SystemExit as e:
    if e.code is None or isinstance(e.code, int):
        code = e.code or 0
    else:
        print(e.code, file=sys.stderr)
        code = 1
except BaseException:
    traceback.print_exc()
    code = 1
sys.stdout.flush()
sys.stderr.flush()
code
`);
