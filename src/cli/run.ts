// Wraps each command action: reads the global options, gives the command its output helpers,
// closes what it opened, maps every error to one line (or a --json error document) and an exit code.
import type { Command } from 'commander';
import { redactText } from '../core/redact.js';
import { DoctorError, ExitCode, type ExitCodeValue } from '../errors.js';
import { classifyRedisReply } from '../redis/connect.js';
import { readGlobalOptions, type GlobalOptions } from './options.js';
import { ErrorDocumentSchema, SCHEMA_VERSION, printJson } from './output.js';
import { createProgress, type Progress } from './progress.js';
import { makeStyle, type Style } from './render.js';

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
}

export type CommandAction<O> = (ctx: CommandContext, opts: O, args: string[]) => Promise<ExitCodeValue>;

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c && c.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export function reportError(thrown: unknown, name: string, json: boolean, secrets: readonly string[]): ExitCodeValue {
  const err = classifyRedisReply(thrown);
  const known = err instanceof DoctorError;
  const exitCode = known ? err.exitCode : ExitCode.INTERNAL;
  const raw = known ? err.message : `internal error: ${(err as Error)?.message ?? String(err)} (set DEBUG=1 for the stack trace)`;
  const message = redactText(raw, secrets);
  if (json) {
    try {
      printJson(ErrorDocumentSchema, {
        schemaVersion: SCHEMA_VERSION,
        command: name,
        ok: false,
        error: { code: known ? err.code : 'INTERNAL', message, exitCode, details: known ? err.details : undefined },
      });
    } catch {
      /* the message below still reaches stderr */
    }
  }
  process.stderr.write(`digest-doctor: ${message}\n`);
  if (process.env.DEBUG) process.stderr.write(redactText(String((err as Error)?.stack ?? err), secrets) + '\n');
  return exitCode;
}

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
    let secrets: string[] = [];
    let json = Boolean(root.opts().json);
    const onSigint = () => {
      process.stderr.write('\ndigest-doctor: interrupted, cleaning up...\n');
      const h = interrupt;
      interrupt = undefined;
      if (!h) {
        process.exit(130);
      }
      h().finally(() => process.exit(130));
    };
    process.once('SIGINT', onSigint);
    try {
      const g = readGlobalOptions(root);
      secrets = g.secrets;
      json = g.json;
      const ctx: CommandContext = {
        g,
        style: makeStyle(g.color && !g.json),
        progress: createProgress(),
        print: (text) => process.stdout.write(redactText(text, secrets) + '\n'),
        defer: (c) => cleanups.push(c),
        onInterrupt: (h) => {
          interrupt = h;
        },
      };
      process.exitCode = await fn(ctx, opts, args);
    } catch (err) {
      process.exitCode = reportError(err, name, json, secrets);
    } finally {
      process.removeListener('SIGINT', onSigint);
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
