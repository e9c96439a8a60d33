// fix-duplicates --apply and mark-stale --apply (batched, locked, guarded, audited) against one
// set-based UPDATE making the same change on an identical copy of the table, side by side; and the
// longest time one batch held its row locks.
import pg from 'pg';
import { connectPg } from '../dist/postgres/db.js';
import { fixDuplicates } from '../dist/ops/fix-duplicates.js';
import { markStale } from '../dist/ops/mark-stale.js';
import { ensureState } from '../dist/postgres/state.js';
import { createBenchDatabase, createServiceSchema, fillDigestHistory, result, time } from './lib.mjs';

const IN_FLIGHT = "('scheduled', 'pending', 'processing')";
const LOCK_LIMIT_MS = 200;
const BATCH = { batchSize: 500, lockTimeoutMs: 2_000, lockWaitMs: 5_000 };
const ROUNDS = 5;

// The baselines: what a person would type in psql to make the same change in one statement.
const baselineFix = (s) => `UPDATE ${s}.digest_history d SET status = 'failed'
  FROM (SELECT id, row_number() OVER (PARTITION BY user_id, digest_date ORDER BY created_at DESC, id DESC) AS rn
        FROM ${s}.digest_history WHERE status IN ${IN_FLIGHT}) x
  WHERE d.id = x.id AND x.rn > 1`;
const baselineStale = (s) => `UPDATE ${s}.digest_history SET status = 'failed', sent_at = NULL
  WHERE status IN ${IN_FLIGHT} AND created_at < now() - interval '7 days'`;

/** (id, status, sent_at) of every row: the two copies must end up the same. */
const outcome = async (client, s) => (await client.query(`SELECT md5(string_agg(id::text || status || coalesce(sent_at::text, ''), ',' ORDER BY id)) AS sum FROM ${s}.digest_history`)).rows[0].sum;

export default async function run({ scale }) {
  const rows = Math.round(1_000_000 * scale);
  const dupGroups = Math.round(10_000 * scale);
  const stale = Math.round(50_000 * scale);
  const bench = await createBenchDatabase('repairs');
  const client = new pg.Client({ connectionString: bench.url });
  await client.connect();
  const dbs = [];
  try {
    for (const s of ['tool', 'base']) {
      await createServiceSchema(client, s);
      await fillDigestHistory(client, s, { rows, dupGroups, stale });
    }
    const dbConfig = { url: bench.url, schema: 'tool', stateSchema: 'dd', statementTimeoutMs: 600_000 };
    // The tool's own schema exists before the first round, as it does after a repair's first run in
    // production (creating it is a one-off, not part of a repair).
    const setup = await connectPg(dbConfig);
    await ensureState(setup, 'audit');
    await setup.close();
    await client.query('VACUUM ANALYZE');
    // Each repair is one-shot, so every round puts both copies back, then times the two side by side
    // (alternating which goes first). This machine's speed drifts over minutes, so the figure is the
    // round with the median tool/baseline ratio (each ratio taken within one round), not the best
    // time of each side taken from different rounds.
    const rounds = { fix: [], stale: [] };
    let fixLockMax = 0;
    let staleLockMax = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const s of ['tool', 'base']) await client.query(`UPDATE ${s}.digest_history SET status = 'pending' WHERE status = 'failed'`);
      await client.query('TRUNCATE dd.audit_batches, dd.runs');
      await client.query('VACUUM ANALYZE');
      const db = await connectPg(dbConfig);
      dbs.push(db);
      const pair = async (baseSql, tool) => {
        const out = {};
        for (const which of round % 2 ? ['tool', 'base'] : ['base', 'tool']) {
          await client.query('CHECKPOINT');
          // Only the figures are kept: the rounds' results (plans of tens of thousands of rows) would
          // otherwise pile up in this process's heap and slow the later rounds' garbage collection.
          const { ms, value } = which === 'base' ? await time(() => client.query(baseSql)) : await time(tool);
          out[which] = { ms, value: which === 'base' ? { rowCount: value.rowCount } : { applied: value.applied } };
        }
        return out;
      };
      const fix = await pair(baselineFix('base'), () => fixDuplicates(db, { ...BATCH, keep: 'newest', apply: true }));
      if (fix.tool.value.applied.rowsChanged !== dupGroups || fix.base.value.rowCount !== dupGroups) {
        throw new Error(`fix-duplicates changed ${fix.tool.value.applied.rowsChanged} rows, the UPDATE ${fix.base.value.rowCount}; expected ${dupGroups}`);
      }
      const st = await pair(baselineStale('base'), () => markStale(db, { skipped: 'bench: no Redis' }, { ...BATCH, olderThanMs: 7 * 86_400_000, includeLive: false, liveIdleMs: 300_000, apply: true }));
      if (st.tool.value.applied.rowsChanged !== stale || st.base.value.rowCount !== stale) {
        throw new Error(`mark-stale changed ${st.tool.value.applied.rowsChanged} rows, the UPDATE ${st.base.value.rowCount}; expected ${stale}`);
      }
      const [a, b] = [await outcome(client, 'tool'), await outcome(client, 'base')];
      if (a !== b) throw new Error('the tool and the set-based UPDATEs left different tables');
      fixLockMax = Math.max(fixLockMax, fix.tool.value.applied.longestBatchMs);
      staleLockMax = Math.max(staleLockMax, st.tool.value.applied.longestBatchMs);
      rounds.fix.push(fix);
      rounds.stale.push(st);
    }
    const median = (list) => [...list].sort((x, y) => x.tool.ms / x.base.ms - y.tool.ms / y.base.ms)[(list.length - 1) >> 1];
    const fixRound = median(rounds.fix);
    const staleRound = median(rounds.stale);
    const ratios = (list) => list.map((r) => (r.tool.ms / r.base.ms).toFixed(2)).join(', ');
    const fixTool = fixRound.tool;
    const staleTool = staleRound.tool;
    const fixLock = fixTool.value.applied.longestBatchMs;
    const staleLock = staleTool.value.applied.longestBatchMs;
    const fixBase = fixRound.base;
    const staleBase = staleRound.base;

    return {
      title: `repairs on ${rows.toLocaleString('en')} rows: ${dupGroups.toLocaleString('en')} duplicate groups, ${stale.toLocaleString('en')} stale rows`,
      results: [
        result(`fix-duplicates --apply (${fixTool.value.applied.batches} batches of <= ${BATCH.batchSize}) vs one set-based UPDATE`, fixTool.ms, 'ms', fixBase.ms, 2),
        result(`mark-stale --apply (${staleTool.value.applied.batches} batches of <= ${BATCH.batchSize}) vs one set-based UPDATE`, staleTool.ms, 'ms', staleBase.ms, 2),
        result(`fix-duplicates: longest lock hold of one batch vs the ${LOCK_LIMIT_MS} ms limit`, fixLock, 'ms', LOCK_LIMIT_MS, 1),
        result(`mark-stale: longest lock hold of one batch vs the ${LOCK_LIMIT_MS} ms limit`, staleLock, 'ms', LOCK_LIMIT_MS, 1),
      ],
      notes:
        `Both copies of the table are filled identically and the tool's own schema is created before the rounds (as after a first run); ${ROUNDS} rounds, each putting both copies back and timing tool and baseline side by side (alternating which goes first); the figures are those of the round with the median ratio (all rounds: fix-duplicates ${ratios(rounds.fix)}; mark-stale ${ratios(rounds.stale)}). ` +
        'Each repair runs through the library (the code the CLI runs: plan in a read-only snapshot, ' +
        'advisory lock, lock_timeout and synchronous_commit off set on the session for the run (the run\'s final record flushes the batches), each batch one statement in its own transaction: row locks (FOR UPDATE SKIP LOCKED), the guarded UPDATE, the images into the audit (one audit_batches row per batch), the run\'s count), the ' +
        'baseline is one UPDATE from a bare pg client without audit. The two tables are checked to end up identical. Lock hold is measured from the ' +
        `batch's first locking statement to its commit, the longest batch of the median round; its baseline column is the 200 ms limit the issue sets. ` +
        `Longest over all rounds: fix-duplicates ${fixLockMax} ms, mark-stale ${staleLockMax} ms.`,
    };
  } finally {
    for (const d of dbs) await d.close();
    await client.end();
    await bench.drop();
  }
}
