import { plural } from '../../core/text.js';
import type { Command } from 'commander';
import { assertUuid } from '../../core/validate.js';
import { undoRun, UndoResultSchema, type UndoResult } from '../../ops/undo.js';
import { openDb } from '../options.js';
import { printJson } from '../output.js';
import type { Style } from '../render.js';
import { confirmWrite, willAsk } from '../confirm.js';
import { act } from '../run.js';
import { addRepairFlags, appliedLine, readRepairFlags, repairExit, stopOnInterrupt, type BatchFlags } from '../repair-flags.js';

export function register(program: Command): void {
  addRepairFlags(
    program
      .command('undo')
      .argument('<run-id>', 'the run to undo (digest-doctor runs lists them)')
      .description('put back the rows a repair run changed, where they are still as it left them; never a second in-flight row (dry run unless --apply)'),
  )
    .addHelpText('after', '\nExamples:\n  digest-doctor runs\n  digest-doctor undo 5b1c3f0e-8d2a-4c61-9e7f-2a3b4c5d6e7f --apply')
    .action(
      act<BatchFlags>(async (ctx, o, args) => {
        const runId = assertUuid(args[0] ?? '', 'run id');
        const flags = readRepairFlags(ctx, o);
        // the repair's --lock-timeout from the start: a lock on the tool's own tables is waited out that long, not the statement timeout
        const db = await openDb(ctx.g, { lockTimeoutMs: flags.lockTimeoutMs });
        ctx.defer(() => db.close());
        if (flags.apply && willAsk(flags.yes)) {
          // On a terminal a person confirms: the plan first (read only), then the question.
          const dry = await undoRun(db, { ...flags, runId, apply: false });
          if (dry.plan.restore.length) {
            await confirmWrite(ctx.g, flags.yes, 'undo --apply', [
              `put back ${plural(dry.plan.restore.length, 'row')} changed by run ${runId} (${dry.target.command}); ${dry.plan.skipped.length} left as they are`,
              `audited as a run of its own in ${ctx.g.stateSchema}`,
            ]);
          }
        }
        const result = await stopOnInterrupt(ctx, flags.controller, undoRun(db, { ...flags, runId }));
        if (ctx.g.json) printJson(UndoResultSchema, result);
        else ctx.print(render(result, flags.show, ctx.style));
        // Rows left because they changed or would duplicate are the undo working as meant; only rows held elsewhere remain to do.
        const a = result.applied;
        return repairExit(result.plan.restore.length, a ? { ...a, skipped: a.skipped.filter((k) => k.reason === 'held-by-another-session') } : null);
      }),
    );
}

export function render(r: UndoResult, show: number, s: Style): string {
  const t = r.target;
  const out = [s.heading(`Undo run ${t.runId} (${t.command}, ${t.startedAt}, by ${t.by}, ${plural(t.rowsChanged, 'row')} changed)`)];
  if (!r.plan.restore.length) out.push(s.ok('nothing to put back'));
  else {
    out.push(s.table([{ header: 'id', id: true }, { header: 'user', id: true }, 'day', 'now', 'back to'], r.plan.restore.slice(0, show).map((x) => [x.id, x.userId, x.digestDate, x.from, x.to])));
    // the way to the rest, as fix-duplicates and mark-stale say it
    out.push(`${s.bold(plural(r.plan.restore.length, 'row'))} to put back${r.plan.restore.length > show ? ` (showing ${show}; --show for more, --json for all)` : ''}`);
  }
  const skipped = r.applied?.skipped ?? r.plan.skipped;
  if (skipped.length) {
    out.push('', s.heading('Left as they are'));
    out.push(s.table([{ header: 'id', id: true }, { header: 'why', shrink: true, min: 20 }], skipped.slice(0, show).map((x) => [x.id, x.detail])));
    if (skipped.length > show) out.push(`${plural(skipped.length, 'row')} left as they are (showing ${show}; --show for more, --json for all)`);
  }
  out.push('');
  if (!r.applied) out.push(r.plan.restore.length ? `${s.verdict('info')} dry run: nothing written; rerun with --apply to write` : `${s.verdict('ok')} nothing to undo`);
  else out.push(appliedLine(r.applied, 'undo', s));
  return out.join('\n');
}
