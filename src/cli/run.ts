// Wraps each command action: reads the global options, gives the command its output helpers,
// closes what it opened, maps every error to one line (or a --json error document) and an exit code.
import type { Command } from 'commander';
import { classifyPgFault, classifyRedisFault, isPgServerError } from '../core/faults.js';
import { redactDeep, redactText, rememberSecrets, secretsOf } from '../core/redact.js';
import { DoctorError, ExitCode, type ExitCodeValue } from '../errors.js';
import { describeTarget } from '../postgres/db.js';
import { describeRedis } from '../redis/connect.js';
import { commandLine, pasteableFlags, readGlobalOptions, type GlobalOptions } from './options.js';
import { COMMAND_NAMES } from './command-list.js';
import { SCHEMA_VERSION, setHintFlags, withHints } from './output.js';
import { createProgress, type Progress } from './progress.js';
import { loadColor, makeStyle, outputWidth, type Style } from './render.js';
import { writeErr } from './stderr.js';

export interface CommandContext {
  g: GlobalOptions;
  style: Style;
  progress: Progress;
  /** Writes a line to stdout (human output). */
  print(text: string): void;
  /** Registers cleanup (closing a connection) that runs however the command ends. */
  defer(cleanup: () => Promise<void> | void): void;
  /** Set by long commands so Ctrl-C can cancel server-side work before exit. */
  onInterrupt(handler: () => Promise<void>): void;
  /**
   * This command line to paste again: this run's global flags (no password), the command, its own
   * flags and operands as given, with `globals` (e.g. ['--key-prefix', 'prod:']) in place of the
   * global flags of the same names.
   */
  rerun(globals: readonly string[]): string;
}

/** `flags` (pasteableFlags' tokens) without the value-taking flags named in `names`, in either form. */
function dropFlags(flags: readonly string[], names: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const f = flags[i]!;
    if (names.has(f.split('=')[0]!)) {
      if (!f.includes('=')) i++;
      continue;
    }
    out.push(f);
  }
  return out;
}

export type CommandAction<O> = (ctx: CommandContext, opts: O, args: string[]) => Promise<ExitCodeValue>;

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c && c.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Where the configured servers are (host:port, no secret), for messages about errors not classified where they arose. */
export interface FaultTargets {
  pg?: string;
  redis?: string;
}

/**
 * Any error as a DoctorError when it is a documented fault: a Postgres server error by SQLSTATE, then
 * the Redis driver's errors, then the Postgres driver's own (src/core/faults.ts). Undefined: a bug of ours.
 */
export function classifyFault(err: unknown, targets: FaultTargets = {}): DoctorError | undefined {
  if (err instanceof DoctorError) return err;
  const pg = targets.pg ?? 'the database';
  if (isPgServerError(err)) return classifyPgFault(err, pg);
  return classifyRedisFault(err, targets.redis ?? 'the Redis server') ?? classifyPgFault(err, pg);
}

const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim();

/**
 * Prints one line (and, with --json, an error document on stdout) for `err` and returns its exit code:
 * the documented code of a classified fault, 70 for anything else. Secrets are masked everywhere; the
 * stack trace only with DEBUG set. Async: with --json, the document's schema is imported first.
 */
export async function reportError(err: unknown, name: string, json: boolean, secrets: readonly string[], targets: FaultTargets = {}): Promise<ExitCodeValue> {
  const known = classifyFault(err, targets);
  const exitCode = known ? known.exitCode : ExitCode.INTERNAL;
  const raw = known ? known.message : `internal error: ${(err as Error)?.message ?? String(err)} (set DEBUG=1 for the stack trace)`;
  const message = oneLine(redactText(withHints(raw), secrets));
  if (json) {
    try {
      // the schema (zod) is loaded only to print an error document
      const { ErrorDocumentSchema } = await import('./error-document.js');
      const doc = ErrorDocumentSchema.parse({
        schemaVersion: SCHEMA_VERSION,
        command: name,
        ok: false,
        error: { code: known ? known.code : 'INTERNAL', message, exitCode, details: known ? known.details : undefined },
      });
      process.stdout.write(JSON.stringify(redactDeep(doc, secrets), null, 2) + '\n');
    } catch {
      /* the message below still reaches stderr */
    }
  }
  writeErr(`digest-doctor: ${message}`);
  if (process.env.DEBUG) process.stderr.write(redactText(String((err as Error)?.stack ?? err), secrets) + '\n');
  return exitCode;
}

/** After Ctrl-C or SIGTERM, how long the work in flight gets to stop cleanly and report before the process exits anyway. */
const INTERRUPT_GRACE_MS = 60_000;

/** Builds a commander action handler around `fn`. */
export function act<O>(fn: CommandAction<O>) {
  return async function (this: Command, ...received: unknown[]): Promise<void> {
    const cmd = received[received.length - 1] as Command;
    const opts = cmd.opts() as O;
    const args = received.slice(0, -2).filter((a): a is string => typeof a === 'string' || Array.isArray(a)) as string[];
    let root: Command = cmd;
    while (root.parent) root = root.parent;
    const name = commandPath(cmd);
    const cleanups: Array<() => Promise<void> | void> = [];
    let interrupt: (() => Promise<void>) | undefined;
    // known before the options are checked, so a URL rejected as bad input is masked too
    let secrets: string[] = secretsOf([root.opts().databaseUrl, root.opts().redisUrl]);
    rememberSecrets(secrets);
    let targets: FaultTargets = {};
    let json = Boolean(root.opts().json);
    // Ctrl-C and SIGTERM alike: a command that registered a handler stops its work cleanly (a repair
    // after the batch in flight) and still prints its result (run id, rows changed, the undo command),
    // then exits 130. A second signal, or no handler, exits at once.
    let signalled = false;
    const onSignal = (sig: NodeJS.Signals) => {
      const h = interrupt;
      interrupt = undefined;
      if (signalled || !h) {
        process.stderr.write('\n');
        writeErr(`digest-doctor: ${sig}: exiting`);
        process.exit(130);
      }
      signalled = true;
      process.stderr.write('\n');
      writeErr(`digest-doctor: ${sig}: stopping cleanly (again to exit at once)...`);
      h().catch(() => undefined);
      // bounded: the work in flight gets this long to wind down
      setTimeout(() => process.exit(130), INTERRUPT_GRACE_MS).unref();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const g = readGlobalOptions(root);
      setHintFlags(g.cliFlags, COMMAND_NAMES);
      secrets = g.secrets;
      json = g.json;
      targets = { pg: g.databaseUrl ? describeTarget(g.databaseUrl) : undefined, redis: g.redisUrl ? describeRedis(g.redisUrl) : undefined };
      if (g.color && !g.json) await loadColor();
      const style = makeStyle(g.color && !g.json, outputWidth(g.wide));
      const ctx: CommandContext = {
        g,
        style,
        progress: createProgress(),
        print: (text) => process.stdout.write(style.fit(redactText(withHints(text), secrets)) + '\n'),
        defer: (c) => cleanups.push(c),
        onInterrupt: (h) => {
          interrupt = h;
        },
        rerun: (globals) => {
          const names = new Set(globals.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]!));
          return commandLine([...dropFlags(g.cliFlags, names), ...globals, ...name.split(' '), ...pasteableFlags(cmd), ...cmd.args]);
        },
      };
      const code = await fn(ctx, opts, args);
      process.exitCode = signalled ? ExitCode.INTERRUPTED : code;
    } catch (err) {
      const code = await reportError(err, name, json, secrets, targets);
      process.exitCode = signalled ? ExitCode.INTERRUPTED : code;
    } finally {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      for (const c of cleanups.reverse()) {
        try {
          await c();
        } catch {
          /* closing is best effort */
        }
      }
    }
  };
}
