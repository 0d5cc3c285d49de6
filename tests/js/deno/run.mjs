// Runs in Deno against the installed package (`deno` export condition): lib/run_checks.mjs with the
// input on stdin, Deno's own file and stdin APIs; prints the result for deno.test.mjs.
import { Model } from 'skedge';
import { runChecks } from '../lib/run_checks.mjs';

const input = JSON.parse(new TextDecoder().decode(await new Response(Deno.stdin.readable).arrayBuffer()));
const out = await runChecks(Model, input, (path) => Deno.readFileSync(path), import.meta.resolve('skedge'));
console.log(JSON.stringify(out));
