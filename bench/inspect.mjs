// inspect on a large table vs the bare duplicate-group query it is built on, side by side.
import pg from 'pg';
import { connectPg } from '../dist/postgres/db.js';
import { inspectSummary } from '../dist/ops/inspect.js';
import { sql } from '../dist/postgres/sql.js';
import { bestOf, phase, result, seededDatabase } from './lib.mjs';

export default async function run({ scale }) {
  const rows = Math.round(1_000_000 * scale);
  const dupGroups = Math.round(10_000 * scale);
  const stale = Math.round(50_000 * scale);
  // The tables repairs starts from (its two copies; inspect reads the first), seeded once for both.
  const bench = await seededDatabase('inspect', ['tool', 'base'], { rows, dupGroups, stale }, { share: true });
  const client = new pg.Client({ connectionString: bench.url });
  await client.connect();
  try {
    const db = await connectPg({ url: bench.url, schema: 'tool', stateSchema: 'dd', statementTimeoutMs: 600_000 });
    try {
      const tool = await phase('tool runs', () => bestOf(3, () => inspectSummary(db, { skipped: 'bench' }, { limit: 20, stuckAfterMs: 3_600_000 })));
      // Baseline: the same statements, sent by a bare pg client with nothing of the tool around them.
      const ids = { schema: 'tool', state: 'dd' };
      const inFlight = ['scheduled', 'pending', 'processing'];
      const base = await phase('baseline runs', () => bestOf(3, async () => {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        await client.query(sql('inspect_duplicate_groups', ids), [inFlight, null, null, null, 20]);
        await client.query(sql('inspect_inflight_ages', ids), [inFlight, null, null, 3_600_000]);
        await client.query(sql('inspect_status_counts', ids), [null, null]);
        await client.query('COMMIT');
      }));
      if (tool.value.duplicates.totalGroups !== dupGroups) throw new Error(`inspect found ${tool.value.duplicates.totalGroups} groups, expected ${dupGroups}`);
      return {
        title: `inspect summary on ${rows.toLocaleString('en')} rows (${dupGroups.toLocaleString('en')} duplicate groups, ${stale.toLocaleString('en')} stale rows)`,
        results: [result('inspect summary vs the same three statements from a bare pg client', tool.ms, 'ms', base.ms, 1.2)],
        notes: 'The summary runs three aggregate queries (groups, ages, statuses) in one read-only snapshot. The baseline sends the same SQL from a bare client, so the ratio is the tool\'s own overhead (target 1.2 is ours, no issue sets one).',
      };
    } finally {
      await db.close();
    }
  } finally {
    await client.end();
    await bench.drop();
  }
}
