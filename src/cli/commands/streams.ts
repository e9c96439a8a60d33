import { Option, type Command } from 'commander';
import { DIGEST_STREAM, resolveStreamKey } from '../../core/contract.js';
import { formatAge } from '../../core/duplicates.js';
import { parseDuration, parsePositiveInt } from '../../core/validate.js';
import { ExitCode } from '../../errors.js';
import { DEFAULT_SCAN_OPTIONS, scanRate, streamsReport, StreamsReportSchema, type StreamsReport } from '../../ops/streams.js';
import { closeRedis } from '../../redis/connect.js';
import { openDb, openRedis } from '../options.js';
import { printJson } from '../output.js';
import { renderFindings } from '../findings.js';
import type { Style } from '../render.js';
import { act } from '../run.js';
import { keyPrefixPhrases } from '../../core/hints.js';
import { missingStreamHint } from '../stream-hint.js';

interface StreamsOptions {
  stream: string[];
  discover?: boolean;
  scan?: boolean;
  maxLag: string;
  maxPending: string;
  idle: string;
  maxDeliveries: string;
  pendingLimit: string;
  danglingLimit: string;
  examples: string;
  pageSize: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function register(program: Command): void {
  program
    .command('streams')
    .description('health of the digest streams (groups, lag, pending, dead and stray consumers, trimming, poison, DLQ); --scan reads every entry')
    .addOption(new Option('--stream <name|key>', 'a stream by logical name or key (repeatable)').default([], 'the digest stream, its DLQ, the context stream and any stream:digests:* found').argParser(collect))
    .option('--discover', 'also SCAN every master for stream:digests:* streams when --stream is given')
    .option('--scan', 'read every entry: duplicate history_ids, idempotency keys with several history_ids, malformed events, and (with a database) events for rows already sent or missing')
    .addOption(new Option('--max-lag <n>', 'group lag above this is a warning').default('1000'))
    .addOption(new Option('--max-pending <n>', 'pending entries in a group above this is a warning').default('100'))
    .addOption(new Option('--idle <duration>', 'a consumer idle longer than this while holding entries is dead').default('10m'))
    .addOption(new Option('--max-deliveries <n>', 'entries delivered this many times or more are poison').default('3'))
    .addOption(new Option('--pending-limit <n>', 'pending entries read per group (oldest first) for poison and dangling checks').default('10000'))
    .addOption(new Option('--dangling-limit <n>', 'pending ids checked for a missing entry per group').default('1000'))
    .addOption(new Option('--examples <n>', 'ids listed per finding').default('10'))
    .addOption(new Option('--page-size <n>', 'entries per XRANGE page when scanning (small pages keep peak memory low; the next is prefetched)').default('250'))
    .addHelpText(
      'after',
      `
Read-only: uses XINFO, XPENDING and XRANGE, never XREADGROUP. Ages come from
the Redis clock. Exit 0 when every check is ok; 1 when any check is warn or
fail; 2 bad input; 3 unreachable.

Examples:
  digest-doctor streams
  digest-doctor streams --stream digests.generate --idle 30m
  digest-doctor streams --scan --database-url postgresql://postgres@db/app
  digest-doctor streams --json \\
    --redis-url redis://10.0.0.1:7000,redis://10.0.0.2:7000`,
    )
    .action(
      act<StreamsOptions>(async (ctx, o) => {
        const { g } = ctx;
        const thresholds = {
          maxLag: parsePositiveInt(o.maxLag, '--max-lag'),
          maxPending: parsePositiveInt(o.maxPending, '--max-pending'),
          idleMs: parseDuration(o.idle, '--idle'),
          maxDeliveries: parsePositiveInt(o.maxDeliveries, '--max-deliveries'),
          listLimit: parsePositiveInt(o.examples, '--examples'),
        };
        const pendingScanLimit = parsePositiveInt(o.pendingLimit, '--pending-limit');
        const danglingCheckLimit = parsePositiveInt(o.danglingLimit, '--dangling-limit');
        const pageSize = parsePositiveInt(o.pageSize, '--page-size');
        const streams = o.stream.map((s) => resolveStreamKey(s.trim())).filter(Boolean);
        const client = await openRedis(g);
        ctx.defer(() => closeRedis(client));
        // The database is optional: with one, --scan also checks each event's row.
        const db = o.scan && g.databaseUrl ? await openDb(g) : undefined;
        if (db) ctx.defer(() => db.close());
        const report = await streamsReport(client, db, {
          streams,
          discover: Boolean(o.discover),
          keyPrefix: g.keyPrefix,
          thresholds,
          pendingScanLimit,
          danglingCheckLimit,
          scan: o.scan ? { ...DEFAULT_SCAN_OPTIONS, pageSize, examples: thresholds.listLimit } : undefined,
          onProgress: (text) => ctx.progress.update(text),
        });
        ctx.progress.done();
        // the digest stream missing where this run looks: name the key prefix that holds it, if one does
        const missing = report.findings.find((f) => f.stream === DIGEST_STREAM && f.check === 'exists' && f.verdict !== 'ok' && report.streams.some((st) => st.key === DIGEST_STREAM && st.state === 'missing'));
        const hint = missing ? await missingStreamHint(ctx, client) : null;
        if (missing && hint?.fix) {
          missing.message = `${missing.message} ${keyPrefixPhrases(g.keyPrefix, []).here}; ${hint.elsewhere}${hint.lead ? `; ${hint.lead}` : ''}`;
          missing.fix = hint.fix;
        }
        if (g.json) printJson(StreamsReportSchema, report);
        else ctx.print(renderStreams(report, ctx.style));
        return report.summary.healthy ? ExitCode.OK : ExitCode.FINDINGS;
      }),
    );
}

const age = (ms: number | null) => (ms === null ? '' : formatAge(ms));

export function renderStreams(r: StreamsReport, s: Style): string {
  const out: string[] = [];
  for (const st of r.streams) {
    out.push(s.heading(st.key));
    if (!st.info) {
      out.push(s.dim(st.state === 'missing' ? 'does not exist' : `not a stream (${st.type})`), '');
      continue;
    }
    const i = st.info;
    out.push(
      s.table(
        ['length', 'first entry', 'age', 'last entry', 'age', { header: 'last generated', drop: 2 }, { header: 'entries added', drop: 3 }, { header: 'max deleted', drop: 1 }],
        [[i.length, i.firstEntryId, age(i.firstEntryAgeMs), i.lastEntryId, age(i.lastEntryAgeMs), i.lastGeneratedId, i.entriesAdded ?? 'n/a', i.maxDeletedEntryId ?? 'n/a']],
      ),
    );
    if (st.groups.length)
      out.push(
        s.table(
          [{ header: 'group', shrink: true }, { header: 'consumers', shrink: true, min: 20 }, 'pending', { header: 'oldest pending', shrink: true, min: 7 }, { header: 'max deliveries', drop: 2, shrink: true, min: 5 }, { header: 'last delivered', drop: 1 }, { header: 'entries read', drop: 3, shrink: true, min: 7 }, 'lag'],
          st.groups.map((g) => [
            g.name,
            g.consumerList.map((c) => `${c.name} (${c.pending}, idle ${formatAge(c.idleMs)})`).join('\n') || '0',
            g.pending,
            age(g.pendingSummary.oldestAgeMs),
            g.pendingSummary.mostDelivered?.deliveries ?? '',
            g.lastDeliveredId,
            g.entriesRead ?? 'n/a',
            g.lag ?? `unknown (${g.lagMin}-${g.lagMax})`,
          ]),
        ),
      );
    out.push('');
  }
  if (r.scan) {
    out.push(s.heading('Scan'));
    out.push(
      s.table(
        [{ header: 'stream', shrink: true, min: 16 }, 'entries', { header: 'malformed', shrink: true, min: 6 }, { header: 'duplicated history_ids', shrink: true, min: 10 }, { header: 'key conflicts', shrink: true, min: 8 }, { header: 'rows sent', shrink: true, min: 5 }, { header: 'rows missing', shrink: true, min: 7 }, { header: 'took', shrink: true, min: 10, drop: 1 }],
        r.scan.streams.map((x) => [
          x.key,
          x.entries,
          x.malformed.count,
          x.duplicates.historyIds,
          x.idempotencyConflicts.keys,
          x.rows?.sent.count ?? 'no db',
          x.rows?.missing.count ?? 'no db',
          scanRate(x),
        ]),
      ),
      '',
    );
  }
  out.push(s.heading('Checks'));
  if (r.findings.length) out.push(renderFindings(r.findings, s, { label: (f, st) => `${f.stream}${f.group ? ` ${f.group}` : ''} ${st.dim(f.check)}` }));
  const sum = r.summary;
  out.push('', `${sum.healthy ? s.ok('healthy') : s.fail('problems found')}: ${sum.ok} ok, ${sum.warn} warn, ${sum.fail} fail (Redis ${r.server.version}${r.server.cluster ? ', cluster' : ''})`);
  return out.join('\n');
}
