// Server processes for the end-to-end tests (MLflow, moto, the collector, wrangler dev), each in its
// own process group on 127.0.0.1, stopped with its children.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
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
