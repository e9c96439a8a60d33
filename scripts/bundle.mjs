// `npm run build` step 2: bundles the CLI (dist/cli/main.js, the tsc output) with esbuild into
// dist/bundle/, one small entry plus a chunk per command loaded on demand (code splitting keeps the
// commands' lazy imports lazy). Node then resolves and reads a few dozen files at start-up instead of
// several hundred (zod, pg, ioredis, commander and our modules): see BENCHMARKS.md, start-up.
// bin/digest-doctor.js loads the bundle when it is at least as new as the tsc output.
// Files read at run time (sql/, the Lua scripts, package.json) are found relative to import.meta.url
// two directories up from each module (src/<dir>/x.ts -> dist/<dir>/x.js), so the bundle lives two
// levels down as well (dist/bundle/*.js) and the same relative URLs reach the package root.
// The embedded engine (@electric-sql/pglite: wasm and data files next to its own modules) stays
// external, loaded from node_modules only by the commands that use it.
import { build } from 'esbuild';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const EXTERNAL = ['@electric-sql/pglite', '@electric-sql/pglite/*'];

/**
 * With code splitting, esbuild turns a CommonJS package reached by `await import('pkg')` into a chunk
 * with only a default export, so `const { Redis } = await import('ioredis')` would find nothing. Such
 * an import is sent to a small ES module instead that imports the package and re-exports its
 * module.exports keys by name (read here by requiring the package), as Node's own import does. An ES
 * module package (chalk, imported only when a run has colour) is left to esbuild as it is.
 */
const cjsDynamicImports = {
  name: 'cjs-dynamic-imports',
  setup(b) {
    const req = createRequire(`${root}package.json`);
    // CommonJS packages only: an ES module package (chalk) is imported as it is
    const isCommonJs = (d) => {
      const file = req.resolve(d);
      if (file.endsWith('.mjs')) return false;
      if (file.endsWith('.cjs')) return true;
      for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
        if (existsSync(join(dir, 'package.json'))) return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).type !== 'module';
      }
      return true;
    };
    const deps = new Set(Object.keys(req('./package.json').dependencies).filter((d) => !EXTERNAL.includes(d) && isCommonJs(d)));
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.kind !== 'dynamic-import' || args.namespace === 'cjs-reexport' || !deps.has(args.path)) return undefined;
      return { path: args.path, namespace: 'cjs-reexport' };
    });
    b.onLoad({ filter: /.*/, namespace: 'cjs-reexport' }, (args) => {
      const names = Object.keys(req(args.path)).filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k));
      const spec = JSON.stringify(args.path);
      return { contents: `import m from ${spec};\nexport default m;\nexport const { ${names.join(', ')} } = m;\n`, resolveDir: root, loader: 'js' };
    });
  },
};
/**
 * Every command as commander registered it (name, description, arguments, options), serialised for
 * the listing: the bundle's src/cli/commands/summaries.ts, so `--help` imports no command's module.
 * Read from the tsc output being bundled, so the listing and the commands never disagree.
 */
async function commandSummaries() {
  const { Command } = await import('commander');
  const { COMMANDS } = await import(`${root}dist/cli/commands/index.js`);
  const program = new Command();
  // Registration only reads the host when a command runs; the listing never runs one.
  const host = { run: () => Promise.reject(new Error('the listing runs no command')) };
  for (const load of Object.values(COMMANDS)) (await load()).register(program, host);
  return program.commands.map((c) => ({
    name: c.name(),
    aliases: c.aliases(),
    description: c.description(),
    summary: c.summary(),
    hidden: Boolean(c._hidden),
    helpGroup: c.helpGroup(),
    args: c.registeredArguments.map((a) => (a.required ? `<${a.name()}${a.variadic ? '...' : ''}>` : `[${a.name()}${a.variadic ? '...' : ''}]`)),
    options: c.options.map((o) => ({ flags: o.flags, description: o.description, hidden: o.hidden })),
  }));
}
const summaries = await commandSummaries();
const commandSummariesModule = {
  name: 'command-summaries',
  setup(b) {
    b.onLoad({ filter: /[\\/]dist[\\/]cli[\\/]commands[\\/]summaries\.js$/ }, () => ({ contents: `export const COMMAND_SUMMARIES = ${JSON.stringify(summaries)};\n`, loader: 'js' }));
  },
};
/**
 * pg picks its socket functions when its lib/stream.js loads: on a Node without a global
 * `navigator` (Node 20) its Cloudflare Workers probe constructs a fetch `Response`, which loads
 * Node's whole bundled undici (a CPU profile put it at a third of `inspect`'s time before its first
 * query). The bundle runs on Node only (engines), so there it takes Node's functions directly. The
 * build fails if pg's text changed, rather than silently keeping the probe.
 */
const PG_STREAM_PROBE = 'const { getStream, getSecureStream } = getStreamFuncs()';
const pgOnNode = {
  name: 'pg-on-node',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]pg[\\/]lib[\\/]stream\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes(PG_STREAM_PROBE)) throw new Error(`${args.path}: no "${PG_STREAM_PROBE}" (pg changed): review the pg-on-node plugin in scripts/bundle.mjs`);
      return { contents: text.replace(PG_STREAM_PROBE, 'const { getStream, getSecureStream } = getNodejsStreamFuncs()'), loader: 'js' };
    });
  },
};
rmSync(`${root}dist/bundle`, { recursive: true, force: true });
await build({
  entryPoints: { main: `${root}dist/cli/main.js` },
  outdir: `${root}dist/bundle`,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  plugins: [cjsDynamicImports, commandSummariesModule, pgOnNode],
  // pg and ioredis are CommonJS and require() Node's modules: give the ESM bundle a require.
  banner: { js: "import { createRequire as __ddCreateRequire } from 'node:module'; const require = __ddCreateRequire(import.meta.url);" },
  // Whitespace and syntax only: identifiers (class and function names in errors) stay as written.
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  logLevel: 'warning',
});
