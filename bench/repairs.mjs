// fix-duplicates --apply, mark-stale --apply and the undo of that mark-stale run (batched, locked,
// guarded, audited) against one set-based UPDATE making the same change on an identical copy of the
// table, side by side; and the longest time one batch held its row locks.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { connectPg } from '../dist/postgres/db.js';
import { fixDuplicates } from '../dist/ops/fix-duplicates.js';
import { markStale } from '../dist/ops/mark-stale.js';
import { readUndoFacts, undoRun } from '../dist/ops/undo.js';
import { ensureState } from '../dist/postgres/state.js';
import { phase, result, seededDatabase, time } from './lib.mjs';

const IN_FLIGHT = "('scheduled', 'pending', 'processing')";
const LOCK_LIMIT_MS = 200;
const BATCH = { batchSize: 500, lockTimeoutMs: 2_000, lockWaitMs: 5_000 };
const ROUNDS = 5;
const QUICK_ROUNDS = 3;

// The baselines: what a person would type in psql to make the same change in one statement.
const baselineFix = (s) => `UPDATE ${s}.digest_history d SET status = 'failed'
  FROM (SELECT id, row_number() OVER (PARTITION BY user_id, digest_date ORDER BY created_at DESC, id DESC) AS rn
        FROM ${s}.digest_history WHERE status IN ${IN_FLIGHT}) x
  WHERE d.id = x.id AND x.rn > 1`;
const baselineStale = (s) => `UPDATE ${s}.digest_history SET status = 'failed', sent_at = NULL
  WHERE status IN ${IN_FLIGHT} AND created_at < now() - interval '7 days'`;
// Undoing mark-stale: the stale rows back to pending (they had no sent_at).
const baselineUndoStale = (s) => `UPDATE ${s}.digest_history SET status = 'pending', sent_at = NULL
  WHERE status = 'failed' AND created_at < now() - interval '7 days'`;

/**
 * The floor under any repair that keeps this project's contract: the same rows changed in batches of
 * BATCH.batchSize from a bare pg client, each batch one statement that locks its rows at their ctid
 * (FOR UPDATE SKIP LOCKED, so a row another session holds is skipped, not waited on), changes only
 * rows still as expected (the guard) and writes their before-images and changes to an audit table
 * (one row per batch, the images lz4-compressed as the tool's audit_batches): no plan beyond one
 * SELECT of the rows' ids and ctids, no decision, no run record, no typed keys, synchronous_commit
 * off as the tool's runs. Nothing a repair of digest-doctor does per row can be left out of it.
 */
const FLOOR_AUDIT = (lz4) => `CREATE TABLE IF NOT EXISTS public.floor_audit (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_id uuid NOT NULL, row_ids uuid[] NOT NULL,
  befores json[] ${lz4 ? 'COMPRESSION lz4 ' : ''}NOT NULL, changes json[] ${lz4 ? 'COMPRESSION lz4 ' : ''}NOT NULL, at timestamptz NOT NULL DEFAULT now())`;
const floorBatch = (s) => `WITH locked AS (
  SELECT d.ctid AS tid, d.id, row_to_json(d) AS before
  FROM unnest($1::uuid[], $2::text[]::tid[]) AS t(id, tid)
  JOIN ${s}.digest_history d ON d.ctid = t.tid AND d.id = t.id
  FOR UPDATE OF d SKIP LOCKED
), changed AS (
  UPDATE ${s}.digest_history d SET status = 'pending', sent_at = NULL
  FROM locked l
  WHERE d.ctid = l.tid AND d.id = l.id AND d.status = 'failed'
  RETURNING d.id, l.before, json_build_object('status', d.status, 'sent_at', d.sent_at) AS change
)
INSERT INTO public.floor_audit (run_id, row_ids, befores, changes)
SELECT $3::uuid, array_agg(id), array_agg(before), array_agg(change) FROM changed HAVING count(*) > 0
RETURNING cardinality(row_ids) AS n`;

/** Undoes the stale rows of schema `s` as the floor does (above); { rowCount } as pg's UPDATE gives it. */
async function floorUndo(client, s) {
  const rows = (await client.query(`SELECT id::text AS id, ctid::text AS tid FROM ${s}.digest_history WHERE status = 'failed' AND created_at < now() - interval '7 days'`)).rows;
  const run = randomUUID();
  let rowCount = 0;
  for (let i = 0; i < rows.length; i += BATCH.batchSize) {
    const part = rows.slice(i, i + BATCH.batchSize);
    const res = await client.query({ name: 'floor_batch', text: floorBatch(s), values: [part.map((r) => r.id), part.map((r) => r.tid), run] });
    rowCount += res.rows[0]?.n ?? 0;
  }
  return { rowCount };
}

/** (id, status, sent_at) of every row: the two copies must end up the same. */
const outcome = async (client, s) => (await client.query(`SELECT md5(string_agg(id::text || status || coalesce(sent_at::text, ''), ',' ORDER BY id)) AS sum FROM ${s}.digest_history`)).rows[0].sum;

export default async function run({ scale }) {
  const rows = Math.round(1_000_000 * scale);
  const dupGroups = Math.round(10_000 * scale);
  const stale = Math.round(50_000 * scale);
  // Cloned from the tables inspect read (seeded once for both).
  const bench = await seededDatabase('repairs', ['tool', 'base'], { rows, dupGroups, stale }, { share: true });
  const client = new pg.Client({ connectionString: bench.url });
  await client.connect();
  // a second connection: the two tables' checksums are computed side by side (not timed)
  const client2 = new pg.Client({ connectionString: bench.url });
  await client2.connect();
  const dbs = [];
  const clients = [];
  try {
    const dbConfig = { url: bench.url, schema: 'tool', stateSchema: 'dd', statementTimeoutMs: 600_000 };
    // The tool's own schema exists before the first round, as it does after a repair's first run in
    // production (creating it is a one-off, not part of a repair).
    const setup = await connectPg(dbConfig);
    await ensureState(setup, 'audit');
    await setup.close();
    // The floor's client: its own session, with the settings a repair's run sets on its session.
    const floorClient = new pg.Client({ connectionString: bench.url });
    await floorClient.connect();
    clients.push(floorClient);
    await floorClient.query(`SET synchronous_commit = off; SET lock_timeout = '${BATCH.lockTimeoutMs}ms'`);
    // lz4 as the tool's audit (sql/state/0002); a server built without it keeps pglz there and here.
    await client.query(FLOOR_AUDIT(true)).catch((err) => (err.code === '0A000' ? client.query(FLOOR_AUDIT(false)) : Promise.reject(err)));
    await phase('vacuum', () => client.query('VACUUM ANALYZE'));
    // Each repair is one-shot, so every round puts both copies back, then times the two side by side
    // (alternating which goes first). This machine's speed drifts over minutes, so the figure is the
    // round with the median tool/baseline ratio (each ratio taken within one round), not the best
    // time of each side taken from different rounds.
    const rounds = { fix: [], stale: [], undo: [] };
    const floors = [];
    const expect = (name, pair, n) => {
      if (pair.tool.value.applied.rowsChanged !== n || pair.base.value.rowCount !== n) {
        throw new Error(`${name} changed ${pair.tool.value.applied.rowsChanged} rows, the UPDATE ${pair.base.value.rowCount}; expected ${n}`);
      }
      rounds[name].push(pair);
    };
    const nRounds = scale < 1 ? QUICK_ROUNDS : ROUNDS;
    for (let round = 0; round < nRounds; round++) {
      await phase('reset between rounds', async () => {
        for (const s of ['tool', 'base']) await client.query(`UPDATE ${s}.digest_history SET status = 'pending' WHERE status = 'failed'`);
        await client.query('TRUNCATE dd.audit_batches, dd.runs, public.floor_audit');
        await client.query('VACUUM ANALYZE');
      });
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
      expect('fix', await phase('fix-duplicates pairs', () => pair(baselineFix('base'), () => fixDuplicates(db, { ...BATCH, keep: 'newest', apply: true }))), dupGroups);
      const st = await phase('mark-stale pairs', () => pair(baselineStale('base'), () => markStale(db, { skipped: 'bench: no Redis' }, { ...BATCH, olderThanMs: 7 * 86_400_000, includeLive: true, liveIdleMs: 300_000, apply: true })));
      expect('stale', st, stale);
      // A quick run checks the first round only (the same code runs in every round).
      const check = round === 0 || scale >= 1;
      const [a, b] = check ? await phase('checks', () => Promise.all([outcome(client, 'tool'), outcome(client2, 'base')])) : [];
      if (a !== b) throw new Error('the tool and the set-based UPDATEs left different tables');
      // What the undo reads before its first batch (the audit's keys, the rows where they are now),
      // timed apart just before it: the share of the undo's time that is not its batches.
      const read = await phase('undo reads', () => time(async () => void (await readUndoFacts(db, st.tool.value.applied.runId, { inFlight: false }))));
      expect('undo', await phase('undo pairs', () => pair(baselineUndoStale('base'), () => undoRun(db, { ...BATCH, runId: st.tool.value.applied.runId, apply: true }))), stale);
      const [c, d] = check ? await phase('checks', () => Promise.all([outcome(client, 'tool'), outcome(client2, 'base')])) : [];
      if (c !== d) throw new Error('the undo and the set-based UPDATE left different tables');
      // The floor, on the baseline's copy: its stale rows failed again as mark-stale's baseline did
      // (not timed), then undone by the floor; it must leave the table as the UPDATE did.
      const floor = await phase('floor', async () => {
        if ((await client.query(baselineStale('base'))).rowCount !== stale) throw new Error('the floor: the stale rows were not failed again');
        await client.query('CHECKPOINT');
        return time(() => floorUndo(floorClient, 'base'));
      });
      if (floor.value.rowCount !== stale) throw new Error(`the floor changed ${floor.value.rowCount} rows; expected ${stale}`);
      const [e] = check ? await phase('checks', () => Promise.all([outcome(client2, 'base')])) : [];
      if (e !== d) throw new Error('the floor and the set-based UPDATE left different tables');
      floors.push({ ms: floor.ms, base: rounds.undo.at(-1).base.ms, undo: rounds.undo.at(-1).tool.ms, read: read.ms });
    }
    const median = (list) => [...list].sort((x, y) => x.tool.ms / x.base.ms - y.tool.ms / y.base.ms)[(list.length - 1) >> 1];
    const ratios = (list) => list.map((r) => (r.tool.ms / r.base.ms).toFixed(2)).join(', ');
    const lockMax = (list) => Math.max(...list.map((r) => r.tool.value.applied.longestBatchMs));
    const names = { fix: 'fix-duplicates --apply', stale: 'mark-stale --apply', undo: 'undo --apply of that mark-stale run' };
    // The issues set 2x for each (issue 16 for undo).
    const targets = { fix: 2, stale: 2, undo: 2 };
    const results = [];
    for (const [k, list] of Object.entries(rounds)) {
      const m = median(list);
      results.push(result(`${names[k]} (${m.tool.value.applied.batches} batches of <= ${BATCH.batchSize}) vs one set-based UPDATE`, m.tool.ms, 'ms', m.base.ms, targets[k]));
    }
    // The floor's rows: where one set-based UPDATE's 2x target sits against the least a batched,
    // locked, audited change costs, and how much more than that least the undo spends.
    const byFloor = [...floors].sort((x, y) => x.ms / x.base - y.ms / y.base)[(floors.length - 1) >> 1];
    results.push(result(`the floor: the same undo in batches of ${BATCH.batchSize} from a bare pg client, each one statement (lock at ctid SKIP LOCKED, guarded UPDATE, images into an audit table), vs one set-based UPDATE`, byFloor.ms, 'ms', byFloor.base, null));
    const overFloor = [...floors].sort((x, y) => x.undo / x.ms - y.undo / y.ms)[(floors.length - 1) >> 1];
    results.push(result('undo --apply vs the floor (its plan, decisions and run record)', overFloor.undo, 'ms', overFloor.ms, null));
    const batchesOverFloor = [...floors].sort((x, y) => (x.undo - x.read) / x.ms - (y.undo - y.read) / y.ms)[(floors.length - 1) >> 1];
    results.push(result("undo --apply less its read before the first batch vs the floor (its batches' decisions and run record)", batchesOverFloor.undo - batchesOverFloor.read, 'ms', batchesOverFloor.ms, null));
    for (const [k, list] of Object.entries(rounds)) {
      results.push(result(`${names[k].split(' ')[0]}: longest lock hold of one batch vs the ${LOCK_LIMIT_MS} ms limit`, median(list).tool.value.applied.longestBatchMs, 'ms', LOCK_LIMIT_MS, 1));
    }

    return {
      title: `repairs on ${rows.toLocaleString('en')} rows: ${dupGroups.toLocaleString('en')} duplicate groups, ${stale.toLocaleString('en')} stale rows`,
      results,
      notes:
        `Both copies of the table are filled identically and the tool's own schema is created before the rounds (as after a first run); ${nRounds} rounds, each putting both copies back and timing tool and baseline side by side (alternating which goes first); the figures are those of the round with the median ratio (all rounds: fix-duplicates ${ratios(rounds.fix)}; mark-stale ${ratios(rounds.stale)}; undo ${ratios(rounds.undo)}). ` +
        'Each repair runs through the library (the code the CLI runs: plan in a read-only snapshot, ' +
        'mark-stale without Redis and so with --include-live, as the CLI requires (there is no worker to ask; the rows are those the live check would leave), ' +
        'advisory lock, lock_timeout and synchronous_commit off set on the session for the run (the run\'s final record flushes the batches), each batch one statement in its own transaction: row locks (FOR UPDATE SKIP LOCKED), the guarded UPDATE, the images into the audit (one audit_batches row per batch), the run\'s count; an undo batch too: lock, decide as decideUndo does, restore, audit), the ' +
        `baseline is one UPDATE from a bare pg client without audit (for undo: the stale rows back to pending). The two tables are checked to end up identical after each${nRounds === ROUNDS ? '' : ' (in the first round only: a quick run)'}. Lock hold is measured from the ` +
        `batch's first locking statement to its commit, the longest batch of the median round; its baseline column is the 200 ms limit the issue sets. ` +
        `Longest over all rounds: fix-duplicates ${lockMax(rounds.fix)} ms, mark-stale ${lockMax(rounds.stale)} ms, undo ${lockMax(rounds.undo)} ms. ` +
        "An undo batch is one statement like the others' (lock, decide as the dry run does, restore, audit), reaching its rows at the ctid where it found them; before its first batch it reads in one statement the audit's typed keys (state version 4: each row's ctid after the run, its status and sent_at before, the status set; no image read) and the rows as they are, to cut batches at whole (user, day) groups, and decides nothing in the client (its batches decide under their locks); the baseline UPDATE does none of that, nor the check of each candidate's day for an in-flight row in each batch. " +
        'Its batches are time-budgeted (about 80 ms of lock hold each, at most the batch size, the first half of it): the batch count varies with the load. ' +
        'The floor (see the code, bench/repairs.mjs floorUndo) changes the same rows as the undo with only what every repair of this tool must do per row: batches of one statement each, row locks that skip a row held elsewhere, the guard, and the before-images in an audit table; ' +
        `it runs on the baseline's copy after the baseline, its stale rows failed again first (not timed), and must leave the same table. Floor vs one UPDATE in each round: ${floors.map((x) => (x.ms / x.base).toFixed(2)).join(', ')}; undo vs the floor: ${floors.map((x) => (x.undo / x.ms).toFixed(2)).join(', ')}. ` +
        `The undo's read before its first batch (readUndoFacts as --apply calls it, timed apart just before each undo): ${floors.map((x) => Math.round(x.read)).join(', ')} ms; the undo less that read vs the floor: ${floors.map((x) => ((x.undo - x.read) / x.ms).toFixed(2)).join(', ')}.`,
    };
  } finally {
    for (const d of dbs) await d.close();
    for (const c of clients) await c.end();
    await client.end();
    await client2.end();
    await bench.drop();
  }
}
