import { Option, type Command } from 'commander';
import { formatAge } from '../../core/duplicates.js';
import { plural } from '../../core/text.js';
import { serviceDay } from '../../core/keys.js';
import { assertDay, assertUuid, parseDuration, parsePositiveInt, parseSince } from '../../core/validate.js';
import { hasProblems, type Finding } from '../../core/finding.js';
import { ExitCode } from '../../errors.js';
import { inspectSummary, inspectUser, type InspectSummary, type InspectUser } from '../../ops/inspect.js';
import { closeRedis } from '../../redis/connect.js';
import { openDb, openOptionalRedis } from '../options.js';
import { printJson } from '../output.js';
import { renderFindings } from '../findings.js';
import type { Style } from '../render.js';
import { act } from '../run.js';
import { hintLine, missingStreamHint } from '../stream-hint.js';

interface InspectOptions {
  user?: string;
  date?: string;
  since?: string;
  limit: string;
  stuckAfter: string;
}

export function register(program: Command): void {
  program
    .command('inspect')
    .description('digest_history duplicates and stuck rows, globally or for one user (--user) with its lock and stream entries')
    .option('--user <uuid>', "one user's timeline for a day")
    .option('--date <YYYY-MM-DD>', 'digest date (with --user: default the service day)')
    .option('--since <date|duration>', 'digest dates from this day on (YYYY-MM-DD, or e.g. 7d back)')
    .addOption(new Option('--limit <n>', 'duplicate groups to list').default('20'))
    .addOption(new Option('--stuck-after <duration>', 'in-flight rows older than this are stuck').default('1h'))
    .addHelpText('after', '\nExamples:\n  digest-doctor inspect\n  digest-doctor inspect --user 6af5e7d3-e736-46da-bfc1-42786f2ab1c0 \\\n    --date 2025-11-25')
    .action(
      act<InspectOptions>(async (ctx, o) => {
        const { g } = ctx;
        const user = o.user === undefined ? undefined : assertUuid(o.user, '--user');
        const date = o.date === undefined ? undefined : assertDay(o.date, '--date');
        const limit = parsePositiveInt(o.limit, '--limit');
        const stuckAfterMs = parseDuration(o.stuckAfter, '--stuck-after');
        const since = o.since === undefined ? undefined : parseSince(o.since, new Date(), (d) => serviceDay(d, g.timeZone));
        const db = await openDb(g);
        ctx.defer(() => db.close());
        const redis = await openOptionalRedis(g);
        if (redis.client) ctx.defer(() => closeRedis(redis.client));
        const redisPart = redis.client ? { client: redis.client } : { skipped: redis.skipped! };
        // the digest stream only under another key prefix: what this run reads of Redis may not be the
        // service's; said in the text (not a finding: that prefix may be another deployment's)
        const hint = redis.client && !g.json ? await missingStreamHint(ctx, redis.client) : null;
        const note = hint?.fix ? `${ctx.style.verdict('info')} ${hintLine(hint)}` : null;
        if (user) {
          const result = await inspectUser(db, redisPart, {
            userId: user,
            digestDate: date ?? serviceDay(new Date(), g.timeZone),
            timeZone: g.timeZone,
            stuckAfterMs,
          });
          if (g.json) printJson((await import('../../ops/inspect-schema.js')).InspectUserSchema, result);
          else ctx.print(renderUser(result, ctx.style, note));
          return hasProblems(result.findings) ? ExitCode.FINDINGS : ExitCode.OK;
        }
        const result = await inspectSummary(db, redisPart, { date, since, limit, stuckAfterMs, keyPrefix: g.keyPrefix });
        if (g.json) printJson((await import('../../ops/inspect-schema.js')).InspectSummarySchema, result);
        else ctx.print(renderSummary(result, ctx.style, note));
        return hasProblems(result.findings) ? ExitCode.FINDINGS : ExitCode.OK;
      }),
    );
}

/** The findings, then "nothing wrong" (`scope`: where nothing was found) when none is a warn or a fail. */
function findingsBlock(findings: Finding[], s: Style, scope = ''): string {
  const lines = renderFindings(findings, s, { items: 5 });
  const ok = hasProblems(findings) ? '' : `${s.verdict('ok')} nothing wrong${scope}`;
  return [lines, ok].filter(Boolean).join('\n');
}

/** `note`: a line for the Redis part (the digest stream found only under another key prefix). */
export function renderSummary(r: InspectSummary, s: Style, note: string | null = null): string {
  const out: string[] = [];
  const d = r.duplicates;
  out.push(s.heading('In-flight duplicates'));
  if (d.totalGroups === 0) out.push(s.ok('none'));
  else {
    out.push(
      s.table(
        [{ header: 'user', id: true }, 'day', 'rows', { header: 'ids (newest first)', id: true }, 'ages'],
        d.groups.map((g) => [g.userId, g.digestDate, g.rows, g.ids.join('\n'), g.createdAt.map((c) => formatAge(Date.parse(r.now) - Date.parse(c))).join('\n')]),
      ),
    );
    const shown = d.groups.length < d.totalGroups ? ` (showing ${d.groups.length}; --limit for more)` : '';
    out.push(`total: ${s.bold(plural(d.totalGroups, 'group'))}, ${plural(d.totalRows, 'in-flight row')}, ${s.fail(String(d.extraRows))} extra${shown}`);
  }
  out.push('', s.heading('In-flight rows by age'));
  out.push(s.table(Object.keys(r.inFlightByAge), [Object.values(r.inFlightByAge)]));
  out.push('', s.heading('Rows by status'));
  const statuses = Object.entries(r.statusCounts);
  const filtered = r.filters.date !== null || r.filters.since !== null;
  const window = r.filters.date !== null ? `digest date ${r.filters.date}` : `digest dates from ${r.filters.since}`;
  out.push(statuses.length ? s.table(['status', 'rows'], statuses) : s.dim(filtered ? `no rows in the window (${window})` : 'table is empty'));
  out.push('', s.heading('Locks'));
  if (r.locks.skipped) out.push(`${s.verdict('skip')} Redis part skipped: ${r.locks.reason}`);
  else if (!r.locks.stale.length) out.push(`${s.verdict('ok')} no stale digest:lock:* keys`);
  else out.push(s.table([{ header: 'key', id: true }, 'kind', 'TTL left', 'allowed', { header: 'problem', shrink: true }], r.locks.stale.map((l) => [l.key, l.kind, l.ttlMs == null ? 'none' : formatAge(l.ttlMs), formatAge(l.maxTtlMs), s.fail(l.reason)])));
  if (note) out.push(note);
  out.push('', findingsBlock(r.findings, s, filtered ? ` in the window (${window})` : ''));
  return out.join('\n');
}

/** `note`: as renderSummary's. */
export function renderUser(r: InspectUser, s: Style, note: string | null = null): string {
  const out: string[] = [];
  out.push(s.heading(`User ${r.userId}, digest date ${r.digestDate}`));
  if (!r.rows.length) out.push(s.dim('no rows for this day'));
  else
    out.push(
      s.table(
        [{ header: 'id', id: true }, 'status', { header: 'created (UTC)', drop: 1 }, `created (${r.timeZone})`, { header: 'sent_at', drop: 2, shrink: true }, 'age', 'marks'],
        r.rows.map((row) => [
          row.id,
          row.inFlight ? s.warn(row.status) : row.status === 'sent' ? s.ok(row.status) : row.status,
          row.createdAt,
          row.createdAtLocal,
          row.sentAt ?? '',
          formatAge(row.ageMs),
          row.marks.map((m) => (m === 'kept' ? s.ok(m) : s.fail(m))).join(' '),
        ]),
      ),
    );
  out.push('');
  if (r.redis.skipped) out.push(`${s.verdict('skip')} Redis part skipped: ${r.redis.reason}`);
  else {
    const { lock, entries } = r.redis;
    out.push(
      `Lock ${lock.key}: ${lock.held ? s.warn(`held (value ${lock.value}, ${lock.noTtl ? s.fail('no TTL') : `TTL ${formatAge(lock.ttlMs ?? 0)}`})`) : 'not held'}`,
    );
    out.push(s.heading('Stream entries'));
    if (!entries.length) out.push(s.dim(`none between ${r.redis.window.from} and ${r.redis.window.to}`));
    else
      out.push(
        s.table(
          [{ header: 'stream', drop: 2, shrink: true }, 'entry id', { header: 'added', drop: 1, shrink: true }, { header: 'trigger', drop: 3 }, { header: 'history_id', id: true }, { header: 'pending', shrink: true }],
          entries.map((e) => [
            e.stream,
            e.id,
            e.addedAt ?? '',
            e.trigger ?? '',
            e.historyId ?? '',
            e.pending ? `${e.pending.consumer}, idle ${formatAge(e.pending.idleMs)}, ${e.pending.deliveries}x` : e.dlqReason ? `DLQ: ${e.dlqReason}` : 'no',
          ]),
        ),
      );
    if (note) out.push(note);
  }
  out.push('', findingsBlock(r.findings, s));
  return out.join('\n');
}
