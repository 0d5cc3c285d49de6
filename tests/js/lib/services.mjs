// Server processes for the end-to-end tests (MLflow, moto, the collector, wrangler dev), each in its
// own process group on 127.0.0.1, stopped with its children.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';

/**
 * A free TCP port on 127.0.0.1, drawn from 20000-25999: under the kernel's ephemeral range, where
 * a port released by bind(0) could be taken by any outgoing connection before the server binds it
 * (scripts/test.sh runs pytest beside these tests); tests/python/ports.py says more.
 */
const given = new Set();
export async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 6000);
    if (given.has(port)) continue;
    given.add(port); // before the check: callers draw several at once (Promise.all)
    if (await bindable(port)) return port;
  }
  throw new Error('no free port in 20000-25999');
}

function bindable(port) {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** SIGTERM to the process group, SIGKILL after 10 s; resolves when it exited. */
export async function stop(p) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  try { process.kill(-p.pid, 'SIGTERM'); } catch {}
  const t = setTimeout(() => { try { process.kill(-p.pid, 'SIGKILL'); } catch {} }, 10_000);
  await new Promise((r) => p.once('exit', r));
  clearTimeout(t);
}

/**
 * Starts `cmd` with `env` in its own process group, records it in `procs` (stop them with `stop`
 * in `after`), and waits until `url` answers 200 (180 s at most; the log tail in the error).
 */
export async function startService(procs, env, what, cmd, args, url, opts = {}) {
  let log = '';
  const p = spawn(cmd, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  p.stdout.on('data', (d) => (log += d));
  p.stderr.on('data', (d) => (log += d));
  procs.push(p);
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (p.exitCode !== null) throw new Error(`${what} exited ${p.exitCode}:\n${log.slice(-3000)}`);
    try {
      const r = await fetch(url);
      await r.body?.cancel();
      if (r.ok) return p;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${what} did not answer ${url} within 180 s:\n${log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
