import { Option, type Command } from 'commander';
import { DIGEST_DLQ_STREAM, DIGEST_STREAM, resolveStreamKey } from '../../core/contract.js';
import { assertDay, assertUuid, parseDuration, parsePositiveInt } from '../../core/validate.js';
import { ExitCode, badInput } from '../../errors.js';
import { DEFAULT_REPLAY_MARKER_PREFIX, replay, ReplayResultSchema, type ReplayResult } from '../../ops/replay.js';
import { closeRedis } from '../../redis/connect.js';
import { openDb, openRedis } from '../options.js';
import { printJson } from '../output.js';
import type { Style } from '../render.js';
import { act } from '../run.js';

interface ReplayFlags {
  fromDlq?: boolean;
  failed?: boolean;
  date?: string;
  historyId?: string[];
  apply?: boolean;
  force?: boolean;
  rate?: string;
  stream: string;
  dlq: string;
  markerPrefix: string;
  markerTtl: string;
  mode: 'auto' | 'lua' | 'idmp';
  limit: string;
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
    .option('--force', 'include events whose row is already sent or missing')
    .option('--rate <events/s>', 'cap the publish rate')
    .addOption(new Option('--stream <name|key>', 'stream to publish to').default(DIGEST_STREAM))
    .addOption(new Option('--dlq <name|key>', 'DLQ to read with --from-dlq').default(DIGEST_DLQ_STREAM))
    .addOption(new Option('--marker-prefix <p>', 'marker key = {<stream tag>}:<prefix><history_id>').default(DEFAULT_REPLAY_MARKER_PREFIX))
    .addOption(new Option('--marker-ttl <duration>', 'how long a marker blocks a repeat').default('24h'))
    .addOption(new Option('--mode <mode>', 'auto: XADD IDMP on Redis 8.6+, the Lua script before').choices(['auto', 'lua', 'idmp']).default('auto'))
    .addOption(new Option('--limit <n>', 'events listed in the table').default('50'))
    .addHelpText(
      'after',
      '\nExit codes: 0 applied, or nothing to replay; 1 a dry run found events to replay; 2 bad input; 3 unreachable.\n\nExamples:\n  digest-doctor replay --from-dlq\n  digest-doctor replay --failed --date 2025-11-25 --apply --rate 500\n  digest-doctor replay --history-id dac58a5d-522f-4e94-b803-caee803b53c6 --apply',
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
        if (!o.markerPrefix) throw badInput('--marker-prefix is empty: give a prefix such as idem:replay:');
        const db = await openDb(g);
        ctx.defer(() => db.close());
        const redis = await openRedis(g);
        ctx.defer(() => closeRedis(redis));
        const result = await replay(db, redis, {
          fromDlq: o.fromDlq,
          failedDate,
          historyIds,
          apply: o.apply,
          force: o.force,
          ratePerSec,
          stream: resolveStreamKey(o.stream),
          dlqStream: resolveStreamKey(o.dlq),
          markerPrefix: o.markerPrefix,
          markerTtlMs,
          mode: o.mode,
          onProgress: (done, total) => ctx.progress.update(`replay: ${done}/${total} published`),
        });
        ctx.progress.done();
        if (g.json) printJson(ReplayResultSchema, result);
        else ctx.print(renderReplay(result, ctx.style, limit));
        return !result.applied && result.counts.toPublish > 0 ? ExitCode.FINDINGS : ExitCode.OK;
      }),
    );
}

export function renderReplay(r: ReplayResult, s: Style, limit: number): string {
  const out: string[] = [];
  out.push(s.heading(`Replay to ${r.stream} (${r.mode === 'idmp' ? 'XADD IDMP' : 'marker script'}, marker ${r.marker.prefix}*)`));
  const shown = r.events.slice(0, limit);
  if (shown.length) {
    out.push(
      s.table(
        ['source', 'source id', 'history_id', 'user', 'day', 'action', r.applied ? 'entry' : ''],
        shown.map((e) => [
          e.source,
          e.sourceId,
          e.historyId,
          e.userId,
          e.digestDate,
          e.action === 'publish' ? s.ok('publish') : s.warn(`skip: ${e.reason}`),
          e.entryId ? `${e.entryId}${e.duplicate ? s.dim(' (already there)') : ''}` : '',
        ]),
      ),
    );
    if (r.events.length > shown.length) out.push(s.dim(`${r.events.length - shown.length} more (--limit, or --json for all)`));
  }
  for (const i of r.invalid) out.push(`${s.verdict('warn')} ${i.source} ${i.sourceId}: ${i.error}`);
  const c = r.counts;
  out.push('');
  if (r.applied) out.push(`${s.verdict('ok')} ${c.added} added, ${c.duplicates} already published, ${c.skipped} skipped, ${c.invalid} invalid`);
  else if (c.toPublish) out.push(`${s.verdict('info')} dry run: ${c.toPublish} to publish, ${c.skipped} skipped, ${c.invalid} invalid; --apply to publish`);
  else out.push(`${s.verdict('ok')} nothing to replay (${c.skipped} skipped, ${c.invalid} invalid)`);
  if (c.skipped && !r.force) out.push(s.dim('skipped events are listed above; --force includes those whose row is sent or missing'));
  return out.join('\n');
}
