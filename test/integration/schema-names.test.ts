// Issue 10 §6: any schema name Postgres accepts works with --schema and --state-schema, and every
// hint that names a schema can be pasted back into a POSIX shell as printed (the hint is run through
// a real `sh` here and the words it yields are given back to the CLI).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSqlFile, quoteIdent, renderSql } from '../../src/postgres/sql.js';
import { runCli } from '../helpers/cli.js';
import { databaseUrl, INCIDENT } from '../helpers/pg.js';

const tag = randomBytes(3).toString('hex');
const NAMES = [`my-schema-${tag}`, `Upper Case ${tag}`, `it's "q" ${tag}`, `схема $x\`y\\z ${tag}`, `-dash ${tag}`];

let admin: pg.Client;
const made: string[] = [];

async function makeSchema(name: string, withIncident = true): Promise<void> {
  await admin.query(`CREATE SCHEMA ${quoteIdent(name)}`);
  made.push(name);
  const ids = { schema: name, state: `${name} dd` };
  await admin.query(renderSql(loadSqlFile('fixtures/service_schema.sql'), ids));
  if (withIncident) await admin.query(renderSql(loadSqlFile('fixtures/incident.sql'), ids));
}

/** The words a POSIX shell makes of `text` (run by a real sh: `set -- <text>`). */
function shellWords(text: string): string[] {
  const out = execFileSync('sh', ['-c', `set -- ${text}; for a in "$@"; do printf '%s\\0' "$a"; done`], { encoding: 'utf8', timeout: 10_000 });
  return out.split('\0').slice(0, -1);
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: databaseUrl() });
  await admin.connect();
});

afterAll(async () => {
  for (const s of made) {
    await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(s)} CASCADE`).catch(() => undefined);
    await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(`${s} dd`)} CASCADE`).catch(() => undefined);
  }
  await admin.end();
});

describe('schema names Postgres accepts (--schema, --state-schema)', () => {
  for (const name of NAMES) {
    it(`${JSON.stringify(name)}: inspect, repairs, undo, runs and migrate work; the hints paste back`, async () => {
      await makeSchema(name);
      const flags = ['--database-url', databaseUrl(), `--schema=${name}`, `--state-schema=${name} dd`, '--json'];
      const cli = (...args: string[]) => runCli([...flags, ...args]);

      const inspect = await cli('inspect');
      expect(inspect.code, inspect.stderr).toBe(1);
      expect(JSON.parse(inspect.stdout)).toMatchObject({ duplicates: { totalGroups: 1 }, statusCounts: { pending: 3, failed: 1, sent: 1 } });
      const fix = await cli('fix-duplicates', '--apply');
      expect(fix.code, fix.stderr).toBe(0);
      const runId = JSON.parse(fix.stdout).applied.runId as string;
      // no digest stream for the live check here: marked without it on purpose (the test is about schema names)
      const stale = await cli('mark-stale', '--older-than', '6h', '--apply', '--include-live');
      expect(stale.code, stale.stderr).toBe(0);
      expect(JSON.parse(stale.stdout).applied.rowsChanged).toBe(2);
      const runs = await cli('runs');
      expect(runs.code).toBe(0);
      expect(JSON.parse(runs.stdout).runs.map((r: { schema: string }) => r.schema)).toEqual([name, name]);
      const undo = await cli('undo', runId, '--apply');
      expect(undo.code, undo.stderr).toBe(0);
      expect(JSON.parse(undo.stdout).applied.rowsChanged).toBe(1);
      const migrate = await cli('migrate', '--apply');
      expect(migrate.code, migrate.stdout + migrate.stderr).toBe(0);
      const status = await cli('migrate', 'status');
      expect(status.code, status.stdout).toBe(0);
      // The index and the tool's tables are where the names say.
      const { rows } = await admin.query(`SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = $1 AND indexname = 'ux_digest_history_user_date'`, [name]);
      expect(rows[0].n).toBe(1);
      const state = await admin.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1`, [`${name} dd`]);
      expect(state.rows[0].n).toBeGreaterThanOrEqual(3);

      // Hint 1: a schema without the table names the schemas that have it, as pasteable flags.
      const missing = await runCli(['--database-url', databaseUrl(), '--schema', `absent ${tag}`, 'inspect']);
      expect(missing.code).toBe(2);
      const hint = /\(pass (.*)\)\s*$/.exec(missing.stderr.trim())?.[1];
      expect(hint, missing.stderr).toBeDefined();
      const words = hint!.split(' or ').map(shellWords);
      const ours = words.find((w) => w.join(' ') === `--schema ${name}` || w.join(' ') === `--schema=${name}`);
      expect(ours, `${hint} names ${name}`).toBeDefined();
      const pasted = await runCli(['--database-url', databaseUrl(), ...ours!, 'inspect', '--user', INCIDENT.user, '--date', INCIDENT.day]);
      expect(pasted.code, pasted.stderr).not.toBe(2);

      // Hint 2: undo pointed at another schema says which --schema to pass.
      const other = `other ${name}`;
      await makeSchema(other, false);
      const wrong = await runCli(['--database-url', databaseUrl(), `--schema=${other}`, `--state-schema=${name} dd`, 'undo', runId]);
      expect(wrong.code).toBe(2);
      const pass = /: pass (.*)$/.exec(wrong.stderr.trim())?.[1];
      expect(pass, wrong.stderr).toBeDefined();
      const again = await runCli(['--database-url', databaseUrl(), ...shellWords(pass!), `--state-schema=${name} dd`, '--json', 'undo', runId]);
      expect(again.code, again.stderr).not.toBe(2);
      expect(JSON.parse(again.stdout).target.runId).toBe(runId);
    });
  }
});
