import { formatDuration, plural } from '../../core/text.js';
import { Option, type Command } from 'commander';
import { formatAge } from '../../core/duplicates.js';
import { RECLAIM_IDLE_MS } from '../../core/contract.js';
import { DEFAULT_LIVE_IDLE_MS } from '../../core/repair.js';
import { assertDay, assertUuid, parseDuration, parsePositiveInt } from '../../core/validate.js';
import { badInput } from '../../errors.js';
import { markStale, MarkStaleResultSchema, type MarkStaleResult } from '../../ops/mark-stale.js';
import { closeRedis } from '../../redis/connect.js';
import { openDb, openOptionalRedis } from '../options.js';
import { printJson } from '../output.js';
import type { Style } from '../render.js';
import { confirmWrite, willAsk } from '../confirm.js';
import { act } from '../run.js';
import { hintLine, missingStreamHint } from '../stream-hint.js';
import { addRepairFlags, appliedLine, readRepairFlags, repairExit, stopOnInterrupt, type BatchFlags } from '../repair-flags.js';

interface StaleOptions extends BatchFlags {
  olderThan?: string;
  user?: string;
  date?: string;
  limit?: string;
  includeLive?: boolean;
  liveIdle: string;
}

export function register(program: Command): void {
  addRepairFlags(
    program
      .command('mark-stale')
      .description("mark in-flight rows older than --older-than 'failed' (and clear sent_at), in audited batches (dry run unless --apply)")
      .option('--older-than <duration>', 'rows created before now() minus this (database clock), e.g. 30m, 6h, 7d')
      .option('--user <uuid>', 'only this user')
      .option('--date <YYYY-MM-DD>', 'only this digest date')
      .option('--limit <n>', 'at most this many rows, oldest first')
      .option('--include-live', 'also mark rows whose event a worker holds right now; with no live check (no Redis, or no digest stream under --key-prefix), mark without it')
      .addOption(new Option('--live-idle <duration>', 'with Redis: a pending event delivered less than this long ago is live').default(`${DEFAULT_LIVE_IDLE_MS / 60_000}m`)),
  )
    .addHelpText('after', `\nWith Redis configured, a row whose event is pending in digest-workers and was\ndelivered less than --live-idle ago (the worker reclaims after ${formatDuration(RECLAIM_IDLE_MS)}) is live:\nskipped and listed unless --include-live. With no Redis, or no digest stream\nunder --key-prefix, the live check cannot run: --apply refuses (exit 4) unless\n--include-live.\n\nExamples:\n  digest-doctor mark-stale --older-than 6h\n  digest-doctor mark-stale --older-than 7d --apply`)
    .action(
      act<StaleOptions>(async (ctx, o) => {
        const { g } = ctx;
        if (o.olderThan === undefined) throw badInput('mark-stale needs --older-than <duration>: e.g. --older-than 6h (rows created more than 6 hours ago by the database clock)');
        const olderThanMs = parseDuration(o.olderThan, '--older-than');
        const flags = readRepairFlags(ctx, o);
        const userId = o.user === undefined ? undefined : assertUuid(o.user, '--user');
        const date = o.date === undefined ? undefined : assertDay(o.date, '--date');
        const limit = o.limit === undefined ? undefined : parsePositiveInt(o.limit, '--limit');
        const liveIdleMs = parseDuration(o.liveIdle, '--live-idle');
        // the repair's --lock-timeout from the start: a lock on the tool's own tables is waited out that long, not the statement timeout
        const db = await openDb(g, { lockTimeoutMs: flags.lockTimeoutMs });
        ctx.defer(() => db.close());
        const { client, skipped } = await openOptionalRedis(g);
        if (client) ctx.defer(() => closeRedis(client));
        // no stream where this run looks: a key prefix not given, or another one (the hint names it and the command to rerun with it)
        const streamMissing = async () => {
          const hint = await missingStreamHint(ctx, client!);
          return hint ? hintLine(hint) : null;
        };
        const live = client ? { client, streamMissing } : { skipped: skipped! };
        const input = { ...flags, olderThanMs, userId, date, limit, includeLive: Boolean(o.includeLive), liveIdleMs };
        if (flags.apply && willAsk(flags.yes)) {
          // On a terminal a person confirms: the plan first (read only), then the question.
          const dry = await markStale(db, live, { ...input, apply: false });
          // a blind plan is not asked about: the apply below refuses it
          if (dry.plan.rows && (dry.redis.checked || input.includeLive)) {
            await confirmWrite(g, flags.yes, 'mark-stale --apply', [
              `mark ${plural(dry.plan.rows, 'in-flight row')} created before ${dry.cutoff} '${dry.repairStatus.status}' and clear their sent_at (the cut-off is taken again from the database clock when it starts)`,
              `audit in ${g.stateSchema}.audit_batches; the run id and its undo command are printed when it ends`,
            ]);
          }
        }
        const work = markStale(db, live, input);
        const result = await stopOnInterrupt(ctx, flags.controller, work);
        if (g.json) printJson(MarkStaleResultSchema, result);
        else ctx.print(render(result, flags.show, ctx.style));
        return repairExit(result.plan.rows, result.applied);
      }),
    );
}

export function render(r: MarkStaleResult, show: number, s: Style): string {
  const out: string[] = [];
  out.push(s.heading(`In-flight rows created before ${r.cutoff} (older than ${formatAge(r.filters.olderThanMs)}): mark '${r.repairStatus.status}'`));
  if (!r.plan.rows) out.push(s.ok('none'));
  else {
    out.push(s.table([{ header: 'id', id: true }, { header: 'user', id: true }, 'day', 'status', 'age'], r.plan.items.slice(0, show).map((x) => [x.id, x.userId, x.digestDate, x.status, formatAge(x.ageMs)])));
    const more = r.plan.rows > show ? ` (showing ${show}; --show for more, --json for all)` : '';
    out.push(`${s.bold(plural(r.plan.rows, 'row'))} to mark${more}`);
  }
  if (!r.redis.checked) {
    // the reason last: it may end with the command to rerun
    const then = r.filters.includeLive ? 'no row was seen as live (--include-live marks them anyway)' : '--apply refuses without it (--include-live marks without it on purpose)';
    out.push(`${s.verdict('warn')} the live check did not run, ${then}: ${r.redis.reason}`);
  } else if (r.redis.groupMissing) out.push(`${s.verdict('warn')} consumer group digest-workers is missing: no event can be live`);
  if (r.live.length) {
    out.push('', s.heading(r.filters.includeLive ? 'Live (marked anyway: --include-live)' : 'Live: event pending and delivered recently, left alone'));
    out.push(s.table([{ header: 'id', id: true }, { header: 'user', id: true }, 'day', 'entry', { header: 'consumer', shrink: true }, 'idle', 'deliveries'], r.live.slice(0, show).map((x) => [x.id, x.userId, x.digestDate, x.entryId, x.consumer, formatAge(x.idleMs), x.deliveries])));
  }
  out.push('');
  const a = r.applied;
  // blind, --apply alone refuses: say what it takes
  const toWrite = !r.redis.checked && !r.filters.includeLive ? 'once the live check can run (above), --apply writes; or add --include-live' : 'rerun with --apply to write';
  if (!a) out.push(r.plan.rows ? `${s.verdict('info')} dry run: nothing written; ${toWrite}` : `${s.verdict('ok')} nothing stale`);
  else {
    out.push(appliedLine(a, 'mark', s));
    if (a.changedMeanwhile) out.push(`       ${plural(a.changedMeanwhile, 'row')} moved on by the service meanwhile: left as they are`);
    if (a.skipped.length) out.push(`${s.verdict('warn')} ${plural(a.skipped.length, 'row')} held by another session were skipped: rerun to finish`);
  }
  return out.join('\n');
}
