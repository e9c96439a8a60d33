import { plural } from '../../core/text.js';
import { Option, type Command } from 'commander';
import { KEEP_POLICIES, formatAge, type KeepPolicy } from '../../core/duplicates.js';
import { serviceDay } from '../../core/keys.js';
import { assertDay, assertUuid, parseSince } from '../../core/validate.js';
import { fixDuplicates, FixDuplicatesResultSchema, type FixDuplicatesResult } from '../../ops/fix-duplicates.js';
import { openDb } from '../options.js';
import { printJson } from '../output.js';
import type { Style } from '../render.js';
import { confirmWrite, willAsk } from '../confirm.js';
import { addRepairFlags, appliedLine, readRepairFlags, repairExit, stopOnInterrupt, type BatchFlags } from '../repair-flags.js';
import { act } from '../run.js';

interface FixOptions extends BatchFlags {
  user?: string;
  date?: string;
  since?: string;
  keep: string;
}

export function register(program: Command): void {
  addRepairFlags(
    program
      .command('fix-duplicates')
      .description("keep one in-flight row per (user, day) and mark the other in-flight rows 'failed', in audited batches (dry run unless --apply)")
      .option('--user <uuid>', 'only this user')
      .option('--date <YYYY-MM-DD>', 'only this digest date')
      .option('--since <date|duration>', 'digest dates from this day on (YYYY-MM-DD, or e.g. 7d back)')
      .addOption(new Option('--keep <policy>', 'which in-flight row to keep').choices(KEEP_POLICIES).default('newest')),
  )
    .addHelpText('after', '\nExamples:\n  digest-doctor fix-duplicates --since 7d\n  digest-doctor fix-duplicates --date 2025-11-25 --apply\n  digest-doctor undo <run-id>')
    .action(
      act<FixOptions>(async (ctx, o) => {
        const { g } = ctx;
        const flags = readRepairFlags(ctx, o);
        const userId = o.user === undefined ? undefined : assertUuid(o.user, '--user');
        const date = o.date === undefined ? undefined : assertDay(o.date, '--date');
        const since = o.since === undefined ? undefined : parseSince(o.since, new Date(), (d) => serviceDay(d, g.timeZone));
        // the repair's --lock-timeout from the start: a lock on the tool's own tables is waited out that long, not the statement timeout
        const db = await openDb(g, { lockTimeoutMs: flags.lockTimeoutMs });
        ctx.defer(() => db.close());
        const input = { ...flags, userId, date, since, keep: o.keep as KeepPolicy };
        if (flags.apply && willAsk(flags.yes)) {
          // On a terminal a person confirms: the plan first (read only), then the question.
          const dry = await fixDuplicates(db, { ...input, apply: false });
          if (dry.plan.rows) {
            await confirmWrite(g, flags.yes, 'fix-duplicates --apply', [
              `mark ${plural(dry.plan.rows, 'in-flight row')} of ${plural(dry.plan.groups, '(user, day) group')} '${dry.repairStatus.status}', keeping the ${input.keep} of each (re-read under the repair lock when it starts)`,
              `audit in ${g.stateSchema}.audit_batches; the run id and its undo command are printed when it ends`,
            ]);
          }
        }
        const result = await stopOnInterrupt(ctx, flags.controller, fixDuplicates(db, input));
        if (g.json) printJson(FixDuplicatesResultSchema, result);
        else ctx.print(render(result, flags.show, ctx.style));
        return repairExit(result.plan.rows, result.applied);
      }),
    );
}

export function render(r: FixDuplicatesResult, show: number, s: Style): string {
  const out: string[] = [];
  const now = Date.parse(r.now);
  const age = (at: string) => formatAge(now - Date.parse(at));
  out.push(s.heading(`Duplicate in-flight rows: keep the ${r.filters.keep}, mark the rest '${r.repairStatus.status}'`));
  if (!r.plan.groups) out.push(s.ok('none'));
  else {
    out.push(
      s.table(
        [{ header: 'user', id: true }, 'day', { header: 'keep', id: true, shrink: true }, { header: `mark '${r.repairStatus.status}'`, id: true, shrink: true }],
        r.plan.items.slice(0, show).map((p) => [p.userId, p.digestDate, `${p.keep.id} (${p.keep.status}, ${age(p.keep.createdAt)})`, p.fail.map((f) => `${f.id} (${f.status}, ${age(f.createdAt)})`).join('\n')]),
      ),
    );
    const more = r.plan.groups > show ? ` (showing ${show}; --show for more, --json for all)` : '';
    out.push(`${s.bold(plural(r.plan.groups, 'group'))}, ${s.fail(plural(r.plan.rows, 'row'))} to mark${more}`);
  }
  out.push('');
  const a = r.applied;
  if (!a) out.push(r.plan.rows ? `${s.verdict('info')} dry run: nothing written; rerun with --apply to write` : `${s.verdict('ok')} nothing to fix`);
  else {
    out.push(appliedLine(a, 'fix', s));
    if (a.runId) out.push(`       ${plural(a.groupsFixed, 'group')} fixed, ${a.resolvedMeanwhile} resolved meanwhile by the service`);
    for (const k of a.skipped) out.push(`${s.verdict('warn')} skipped ${k.userId} ${k.digestDate}: ${k.reason}; rerun to finish`);
  }
  return out.join('\n');
}
