// The repair audit in the tool's own schema ({{state}}.runs, {{state}}.audit_batches and the view
// {{state}}.audit; sql/state/): starting and finishing runs, reading them back. Batches
// write their images themselves, in the same statement as their UPDATE (sql/queries/*_apply.sql).
import { hostname } from 'node:os';
import type { Db } from './db.js';
import { ensureState, readState } from './state.js';
import type { RowImage } from '../core/repair.js';

export interface RunRecord {
  id: string;
  command: string;
  tableSchema: string;
  args: Record<string, unknown>;
  undoes: string | null;
  /** As recorded: running | done | interrupted | failed. */
  status: string;
  error: string | null;
  rowsChanged: number;
  startedAt: Date;
  finishedAt: Date | null;
  dbUser: string;
  clientAddr: string | null;
  clientHost: string | null;
  applicationName: string;
  /** The session that ran it is still connected. */
  sessionAlive: boolean;
}

interface RunRow {
  id: string;
  command: string;
  table_schema: string;
  args: Record<string, unknown>;
  undoes: string | null;
  status: string;
  error: string | null;
  rows_changed: number;
  started_at: Date;
  finished_at: Date | null;
  db_user: string;
  client_addr: string | null;
  client_host: string | null;
  application_name: string;
  session_alive: boolean;
}

const toRun = (r: RunRow): RunRecord => ({
  id: r.id,
  command: r.command,
  tableSchema: r.table_schema,
  args: r.args,
  undoes: r.undoes,
  status: r.status,
  error: r.error,
  rowsChanged: r.rows_changed,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  dbUser: r.db_user,
  clientAddr: r.client_addr,
  clientHost: r.client_host,
  applicationName: r.application_name,
  sessionAlive: r.session_alive,
});

/** The machine the CLI runs on, recorded next to the server-side inet_client_addr(). */
export const CLIENT_HOST = hostname();

export async function startRun(db: Db, run: { id: string; command: string; args: Record<string, unknown>; undoes?: string }): Promise<void> {
  await ensureState(db);
  await db.query('runs_start', [run.id, run.command, db.ids.schema, JSON.stringify(run.args), run.undoes ?? null, CLIENT_HOST]);
}

export async function finishRun(db: Db, id: string, status: 'done' | 'interrupted' | 'failed', error?: string): Promise<number> {
  const [row] = await db.query<{ rows_changed: number }>('runs_finish', [id, status, error ?? null]);
  return row?.rows_changed ?? 0;
}

/** Removes the record of run `id` when it changed and audited nothing (sql/queries/runs_discard.sql); true when removed. */
export async function discardRun(db: Db, id: string): Promise<boolean> {
  return (await db.query('runs_discard', [id])).length > 0;
}

/**
 * Recent runs, newest first; empty when nothing is recorded yet (no state schema or no runs table).
 * Reads only, the state as it is; REFUSED (exit 4) with the GRANTs when the role may not read it.
 */
export async function listRuns(db: Db, opts: { limit: number; command?: string; allSchemas?: boolean }): Promise<RunRecord[]> {
  const state = await readState(db, ['runs'], 'runs');
  if (!state?.relations.has('runs')) return [];
  const rows = await db.query<RunRow>('runs_list', [opts.limit, opts.command ?? null, opts.allSchemas ? null : db.ids.schema]);
  return rows.map(toRun);
}

/** One run, or undefined when it is not recorded. Reads only (see listRuns). */
export async function getRun(db: Db, id: string, what = 'undo'): Promise<RunRecord | undefined> {
  const state = await readState(db, ['runs'], what);
  if (!state?.relations.has('runs')) return undefined;
  const [row] = await db.query<RunRow>('runs_get', [id]);
  return row ? toRun(row) : undefined;
}

export interface AuditRecord {
  rowId: string;
  before: RowImage;
  after: RowImage;
}

/**
 * Every audited row of a run, in the order written. Reads only, the audit as it is: batches from
 * audit_batches (whole batches at a time, about `pageSize` rows), and rows an earlier version kept
 * in the per-row table `audit` (before the upgrade an applying command makes) from that table, in
 * the order that upgrade would move them. REFUSED (exit 4) with the GRANTs when the role may not
 * read them; an absent audit reads as empty.
 */
export async function readRunAudit(db: Db, runId: string, pageSize = 5000, what = 'undo'): Promise<AuditRecord[]> {
  const state = await readState(db, ['audit_batches', 'audit'], what);
  const out: AuditRecord[] = [];
  if (!state) return out;
  if (state.relations.get('audit')?.kind === 'r') {
    let last: { at: string; id: string } | null = null;
    for (;;) {
      const page: Array<{ row_id: string; before: RowImage; after: RowImage; at_key: string }> = await db.query('audit_v1_run_page', [runId, last?.at ?? null, last?.id ?? null, pageSize]);
      for (const r of page) out.push({ rowId: r.row_id, before: r.before, after: r.after });
      if (page.length < pageSize) break;
      const tail = page[page.length - 1]!;
      last = { at: tail.at_key, id: tail.row_id };
    }
  }
  if (!state.relations.has('audit_batches')) return out;
  let lastSeq = 0;
  for (;;) {
    const page = await db.query<{ row_id: string; before: RowImage; change: Partial<RowImage>; batch_seq: number }>('audit_run_page', [runId, lastSeq, pageSize]);
    if (!page.length) return out;
    // The after-image is the before-image with the batch's change, as the audit view gives it.
    for (const r of page) out.push({ rowId: r.row_id, before: r.before, after: { ...r.before, ...r.change } });
    lastSeq = page[page.length - 1]!.batch_seq;
  }
}
