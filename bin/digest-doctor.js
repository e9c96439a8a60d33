#!/usr/bin/env node
// The bundled CLI (dist/bundle/, built by `npm run build`: scripts/bundle.mjs) starts faster; it is
// used when present and at least as new as the tsc output, so a bare `tsc` rebuild is never shadowed
// by a stale bundle.
import { statSync } from 'node:fs';

const mtime = (rel) => statSync(new URL(rel, import.meta.url), { throwIfNoEntry: false })?.mtimeMs ?? -1;
const bundle = mtime('../dist/bundle/main.js');
const { runBinary } = await import(bundle > 0 && bundle >= mtime('../dist/cli/main.js') ? '../dist/bundle/main.js' : '../dist/cli/main.js');

runBinary(process.argv);
