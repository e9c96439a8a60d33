// The flags and helpers the three repairs share (fix-duplicates, mark-stale, undo): --apply, --yes,
// batch size and timeouts, rows shown; Ctrl-C handling, the exit rule and the "applied" line.
import { Option, type Command } from 'commander';
import { DEFAULT_BATCH_LOCK_TIMEOUT_MS, DEFAULT_BATCH_SIZE, DEFAULT_LOCK_WAIT_MS, MAX_BATCH_SIZE } from '../core/repair.js';
import { plural } from '../core/text.js';
import { parseDuration, parsePositiveInt } from '../core/validate.js';
import { ExitCode, badInput, type ExitCodeValue } from '../errors.js';
import type { BatchOptions } from '../ops/repair.js';
import type { Style } from './render.js';
import type { CommandContext } from './run.js';

export interface BatchFlags {
  apply?: boolean;
  yes?: boolean;
  batchSize: string;
  lockTimeout: string;
  lockWait: string;
  show: string;
}

/** The flags every repair shares: --apply, batch size and timeouts, rows shown. */
export function addRepairFlags(cmd: Command): Command {
  return cmd
    .option('--apply', 'write the changes (without it: a dry run that writes nothing)')
    .option('--yes', 'with --apply on a terminal: do not ask for confirmation')
    .addOption(new Option('--batch-size <n>', `rows changed per batch transaction (at most ${MAX_BATCH_SIZE})`).default(String(DEFAULT_BATCH_SIZE)))
    .addOption(new Option('--lock-timeout <duration>', 'lock_timeout of each batch transaction').default(`${DEFAULT_BATCH_LOCK_TIMEOUT_MS / 1000}s`))
    .addOption(new Option('--lock-wait <duration>', 'how long to wait for another run of the same repair before exiting busy (4)').default(`${DEFAULT_LOCK_WAIT_MS / 1000}s`))
    .addOption(new Option('--show <n>', 'rows or groups listed in the tables').default('50'));
}

/** Parses the shared flags; wires Ctrl-C to stop after the current batch and progress to stderr. */
export function readRepairFlags(ctx: CommandContext, o: BatchFlags): BatchOptions & { apply: boolean; yes: boolean; show: number; controller: AbortController } {
  const batchSize = parsePositiveInt(o.batchSize, '--batch-size');
  if (batchSize > MAX_BATCH_SIZE) throw badInput(`--batch-size ${batchSize} is too large: at most ${MAX_BATCH_SIZE}, so each batch holds its locks briefly`);
  const controller = new AbortController();
  return {
    apply: Boolean(o.apply),
    yes: Boolean(o.yes),
    batchSize,
    lockTimeoutMs: parseDuration(o.lockTimeout, '--lock-timeout'),
    lockWaitMs: o.lockWait.trim() === '0' ? 0 : parseDuration(o.lockWait, '--lock-wait'),
    show: parsePositiveInt(o.show, '--show'),
    signal: controller.signal,
    controller,
    onProgress: (done, total) => ctx.progress.count('rows changed', done, total, 'row'),
  };
}

/** Ctrl-C: stop after the batch in flight (it commits or rolls back whole), record the run as interrupted. */
export function stopOnInterrupt<T>(ctx: CommandContext, controller: AbortController, work: Promise<T>): Promise<T> {
  ctx.onInterrupt(async () => {
    controller.abort();
    await work.catch(() => undefined);
  });
  return work.finally(() => ctx.progress.done());
}

/** Exit code of a repair: a dry run with work to do is 1; applied with nothing left is 0. */
export function repairExit(planned: number, applied: { status: string; skipped: unknown[] } | null): ExitCodeValue {
  if (!applied) return planned > 0 ? ExitCode.FINDINGS : ExitCode.OK;
  return applied.status === 'interrupted' || applied.skipped.length ? ExitCode.FINDINGS : ExitCode.OK;
}

export function appliedLine(a: { runId: string | null; status: string; rowsChanged: number; batches: number; longestBatchMs: number }, what: string, s: Style): string {
  if (!a.runId) return `${s.verdict('ok')} nothing to ${what}: no changes made`;
  const head = a.status === 'interrupted' ? `${s.verdict('warn')} interrupted: run ${s.bold(a.runId)} changed` : `${s.verdict('ok')} run ${s.bold(a.runId)}:`;
  return `${head} ${plural(a.rowsChanged, 'row')} in ${plural(a.batches, 'batch')}, longest lock hold ${a.longestBatchMs} ms\n       undo with: digest-doctor undo ${a.runId}`;
}
