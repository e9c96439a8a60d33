// Run by `npm run build`: the initialised empty data directory new embedded databases start from
// (src/postgres/embedded.ts, writeEmbeddedTemplate). Skipped when it exists for this PGlite version.
import { writeEmbeddedTemplate } from '../dist/postgres/embedded.js';

const started = performance.now();
const file = await writeEmbeddedTemplate();
console.error(`embedded database template: ${file} (${Math.round(performance.now() - started)} ms)`);
