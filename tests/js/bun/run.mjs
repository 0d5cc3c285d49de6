// Runs in Bun against the installed package (Bun takes the `node` export condition): lib/run_checks.mjs
// with the input on stdin (Bun's API) and files read with node:fs, as Bun apps do; prints the result
// for bun.test.mjs.
import { readFileSync } from 'node:fs';
import { Model } from 'skedge';
import { runChecks } from '../lib/run_checks.mjs';

const input = JSON.parse(await Bun.stdin.text());
const out = await runChecks(Model, input, (path) => readFileSync(path), import.meta.resolve('skedge'));
console.log(JSON.stringify(out));
