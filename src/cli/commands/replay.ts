import { formatCount, formatDuration, plural } from '../../core/text.js';
import { Option, type Command } from 'commander';
import { DIGEST_DLQ_STREAM, DIGEST_GROUP, DIGEST_STREAM, STREAM_MAXLEN, resolveStreamKey } from '../../core/contract.js';
import { forceOverrides } from '../../core/replay.js';
import { assertDay, assertUuid, parseDuration, parsePositiveInt } from '../../core/validate.js';
import { ExitCode, badInput } from '../../errors.js';
import { DEFAULT_REPLAY_MARKER_PREFIX, replay, ReplayResultSchema, type ReplayResult } from '../../ops/replay.js';
import { closeRedis, describeRedis } from '../../redis/connect.js';
import { openDb, openRedis, redisCliCommand } from '../options.js';
import { printJson } from '../output.js';
import type { Style } from '../render.js';
import { confirmWrite, willAsk } from '../confirm.js';
import { act } from '../run.js';

interface ReplayFlags {
  fromDlq?: boolean;
  failed?: boolean;
  date?: string;
  historyId?: string[];
  apply?: boolean;
  yes?: boolean;
  force?: boolean;
  rate?: string;
  stream: string;
  dlq: string;
  markerPrefix: string;
  markerTtl: string;
  mode: 'auto' | 'lua' | 'idmp';
  limit: string;
  group: string;
  maxlen: string;
  stallTimeout: string;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function register(program: Command): void {
  program
    .command('replay')
    .description('republish digest events idempotently: from the DLQ, failed rows of a day, or named rows (dry run unless --apply)')
    .option('--from-dlq', 'replay the entries of the DLQ (both DLQ shapes)')
    .option('--failed', 'replay the rows `failed` on --date')
    .option('--date <YYYY-MM-DD>', 'with --failed: the digest_date')
    .option('--history-id <uuid>', 'replay this digest_history row (repeatable)', collect)
    .option('--apply', 'publish (without it: show what would be published)')
    .option('--yes', 'with --apply on a terminal: do not ask for confirmation')
    .option('--force', 'include events whose row, or another row of its day, is already sent, or whose row is missing (never beside an in-flight row of the same user and day; a marker whose entry is there or was delivered still blocks)')
    .option('--rate <events/s>', 'cap the publish rate')
    .addOption(new Option('--stream <name|key>', 'stream to publish to').default(DIGEST_STREAM))
    .addOption(new Option('--dlq <name|key>', 'DLQ to read with --from-dlq').default(DIGEST_DLQ_STREAM))
    .addOption(new Option('--marker-prefix <p>', 'marker key = {<stream tag>}:<prefix><history_id>').default(DEFAULT_REPLAY_MARKER_PREFIX))
    .addOption(new Option('--marker-ttl <duration>', 'how long a marker blocks a repeat').default('24h'))
    .addOption(new Option('--mode <mode>', 'auto: XADD IDMP on Redis 8.6+, the Lua script before').choices(['auto', 'lua', 'idmp']).default('auto'))
    .addOption(new Option('--group <name>', 'the consumer group the workers read with: the replay waits for it to read').default(DIGEST_GROUP))
    .addOption(new Option('--maxlen <n>', "the stream's MAXLEN ~: unread entries are kept under 90% of it").default(String(STREAM_MAXLEN)))
    .addOption(new Option('--stall-timeout <duration>', 'stop (exit 4) when the group reads nothing for this long while the backlog is full').default('60s'))
    .addOption(new Option('--limit <n>', 'events listed in the table').default('50'))
    .addHelpText(
      'after',
      `
Exit codes: 0 applied, or nothing to replay; 1 a dry run found events to
replay, or a --history-id has no row; 2 bad input; 3 unreachable; 4 refused:
no stream under this --key-prefix or no consumer group --group on it (no
worker would read the replay), a key that is not a stream, or the group read
nothing for --stall-timeout (rerun the same command to send the rest).

Examples:
  digest-doctor replay --from-dlq
  digest-doctor replay --failed --date 2025-11-25 --apply --rate 500
  digest-doctor replay --history-id dac58a5d-522f-4e94-b803-caee803b53c6 --apply`,
    )
    .action(
      act<ReplayFlags>(async (ctx, o) => {
        const { g } = ctx;
        const historyIds = (o.historyId ?? []).map((h) => assertUuid(h, '--history-id'));
        if (o.failed && o.date === undefined) throw badInput('--failed needs --date YYYY-MM-DD: the digest_date whose failed rows to replay');
        if (o.date !== undefined && !o.failed) throw badInput('--date goes with --failed: add --failed, or use --history-id for single rows');
        const failedDate = o.date === undefined ? undefined : assertDay(o.date, '--date');
        if (!o.fromDlq && !failedDate && historyIds.length === 0) throw badInput('nothing to replay: pass --from-dlq, --failed --date <day>, or --history-id <uuid>');
        const ratePerSec = o.rate === undefined ? undefined : parsePositiveInt(o.rate, '--rate');
        const markerTtlMs = parseDuration(o.markerTtl, '--marker-ttl');
        const limit = parsePositiveInt(o.limit, '--limit');
        const maxlen = parsePositiveInt(o.maxlen, '--maxlen');
        const stallTimeoutMs = parseDuration(o.stallTimeout, '--stall-timeout');
        if (!o.group) throw badInput('--group is empty: give the consumer group the workers read with, such as digest-workers');
        if (!o.markerPrefix) throw badInput('--marker-prefix is empty: give a prefix such as idem:replay:');
        // Rows are read with their user's tenant (replay_*_rows.sql join users).
        const db = await openDb(g, { alsoReads: ['users'] });
        ctx.defer(() => db.close());
        const redis = await openRedis(g);
        ctx.defer(() => closeRedis(redis));
        const plan = {
          fromDlq: o.fromDlq,
          failedDate,
          historyIds,
          force: o.force,
          ratePerSec,
          stream: resolveStreamKey(o.stream),
          dlqStream: resolveStreamKey(o.dlq),
          markerPrefix: o.markerPrefix,
          markerTtlMs,
          mode: o.mode,
          group: o.group,
          maxlen,
          stallTimeoutMs,
          advice: { redisCli: (args: string) => redisCliCommand(g, args), rerunWithKeyPrefix: (p: string) => ctx.rerun(['--key-prefix', p]) },
        };
        if (o.apply && willAsk(o.yes)) {
          // On a terminal a person confirms: the plan first (a dry run: reads only), then the question.
          const dry = await replay(db, redis, { ...plan, apply: false });
          // an undeliverable replay is refused below: nothing to confirm
          if (dry.counts.toPublish && !dry.findings.length) {
            await confirmWrite(g, o.yes, 'replay --apply', [`publish ${plural(dry.counts.toPublish, 'event')} to ${dry.stream} (${dry.counts.skipped} skipped, ${dry.counts.invalid} invalid), each once (markers ${dry.marker.prefix}*)`], `redis: ${describeRedis(g.redisUrl!)}${g.keyPrefix ? `, key prefix ${g.keyPrefix}` : ''}`);
          }
        }
        const result = await replay(db, redis, {
          ...plan,
          apply: o.apply,
          onProgress: (done, total) => ctx.progress.count('replay: published', done, total, 'event'),
          onWait: (w) =>
            ctx.progress.update(`replay: ${w.published}/${w.total} published; waiting for group ${o.group} to read (${formatCount(w.unread)} unread, limit ${formatCount(w.backlogLimit)}, ${formatDuration(w.waitedMs)})`),
        });
        ctx.progress.done();
        if (g.json) printJson(ReplayResultSchema, result);
        else ctx.print(renderReplay(result, ctx.style, limit));
        // a named row that does not exist is a finding about the input, whatever else happened
        if (notFound(result).length) return ExitCode.FINDINGS;
        return !result.applied && result.counts.toPublish > 0 ? ExitCode.FINDINGS : ExitCode.OK;
      }),
    );
}

/** What the entry column adds after the id, by outcome. */
const OUTCOME_NOTE: Record<NonNullable<ReplayResult['events'][number]['outcome']>, string> = {
  added: '',
  're-added': 're-added: the earlier entry was trimmed unread',
  repeat: 'already there',
  'repeat-delivered': 'already delivered, trimmed since',
};

export function renderReplay(r: ReplayResult, s: Style, limit: number): string {
  const out: string[] = [];
  out.push(s.heading(`Replay to ${r.stream} (${r.mode === 'idmp' ? 'XADD IDMP' : 'marker script'}, marker ${r.marker.prefix}*)`));
  const shown = r.events.slice(0, limit);
  if (shown.length) {
    out.push(
      s.table(
        [{ header: 'source', drop: 1 }, { header: 'source id', id: true, shrink: true }, { header: 'history_id', id: true }, { header: 'user', id: true }, 'day', { header: 'action', shrink: true }, { header: 'entry', shrink: true, min: 16 }],
        shown.map((e) => [
          e.source,
          e.sourceId,
          e.historyId,
          e.userId,
          e.digestDate,
          e.action === 'publish' ? s.ok('publish') : s.warn(`skip: ${e.reason}${e.skippedAt === 'publish' ? ' (at publish)' : ''}`),
          e.entryId ? `${e.entryId}${OUTCOME_NOTE[e.outcome ?? 'added'] ? s.dim(` (${OUTCOME_NOTE[e.outcome ?? 'added']})`) : ''}` : '',
        ]),
      ),
    );
    if (r.events.length > shown.length) out.push(s.dim(`${r.events.length - shown.length} more (--limit, or --json for all)`));
  }
  for (const i of r.invalid) out.push(`${s.verdict('warn')} ${i.source} ${i.sourceId}: ${i.error}`);
  // a dry run's only: --apply refuses before publishing
  for (const f of r.findings) out.push(`${s.verdict(f.verdict)} ${f.message}${f.fix ? `: ${f.fix}` : ''}`);
  const missing = notFound(r);
  for (const id of missing) out.push(`${s.verdict('fail')} --history-id ${id}: no digest_history row with this id (check the id, and --schema): nothing to replay for it, with or without --force`);
  const c = r.counts;
  out.push('');
  const nothingElse = r.applied ? c.added + c.duplicates === 0 : c.toPublish === 0;
  if (missing.length && nothingElse) out.push(`${s.verdict('fail')} nothing replayed: ${plural(missing.length, 'history_id')} not found${c.skipped > missing.length ? `, ${c.skipped - missing.length} skipped` : ''}`);
  else if (r.applied) {
    out.push(`${s.verdict('ok')} ${c.added} added, ${c.duplicates} already published, ${c.skipped} skipped, ${c.invalid} invalid`);
    if (c.reAdded) out.push(s.dim(`${c.reAdded} of the added had a marker whose entry was trimmed before group ${r.pacing.group} read it: published again`));
    if (c.deliveredGone) out.push(s.dim(`${c.deliveredGone} of the already published were delivered to group ${r.pacing.group} and trimmed since`));
    const atPublish = r.events.filter((e) => e.skippedAt === 'publish').length;
    if (atPublish) out.push(s.dim(`${atPublish} of the skipped were planned but not published: the recheck right before their batch found their day in flight (a digest requested since the plan)`));
  }
  else if (c.toPublish && r.findings.length) out.push(`${s.verdict('fail')} dry run: ${c.toPublish} to publish, ${c.skipped} skipped, ${c.invalid} invalid; no worker would read them there (above): --apply refuses until that is fixed`);
  else if (c.toPublish) out.push(`${s.verdict('info')} dry run: ${c.toPublish} to publish, ${c.skipped} skipped, ${c.invalid} invalid; --apply to publish`);
  else out.push(`${s.verdict('ok')} nothing to replay (${c.skipped} skipped, ${c.invalid} invalid)`);
  // --force only overrides skips it can act on (an event with no user has nothing to rebuild it from)
  const forceable = r.events.filter((e) => e.action === 'skip' && forceOverrides(e.reason, e.userId !== null));
  if (forceable.length && !r.force) out.push(s.dim(`${plural(forceable.length, 'skipped event')} above can be published anyway with --force (its row, or another of its day, is already sent, or its row is missing)`));
  const inFlight = r.events.filter((e) => e.action === 'skip' && (e.reason === 'another row of the day is in flight' || e.reason === 'row went in flight')).length;
  if (inFlight) out.push(s.dim(`${plural(inFlight, 'skipped event')} above ${inFlight === 1 ? 'has' : 'have'} a row of the day in flight: a worker has that digest, so a replay would send it twice; --force does not change that`));
  return out.join('\n');
}

/** The --history-id rows that do not exist. */
function notFound(r: ReplayResult): string[] {
  return r.events.filter((e) => e.source === 'history-id' && e.action === 'skip' && e.reason === 'row missing').map((e) => e.sourceId);
}
