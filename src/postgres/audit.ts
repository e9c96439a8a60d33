// The repair audit in the tool's own schema ({{state}}.runs, {{state}}.audit_batches and the view
// {{state}}.audit; sql/state/audit.sql): starting and finishing runs, reading them back. Batches
// write their images themselves, in the same statement as their UPDATE (sql/queries/*_apply.sql).
import { hostname } from 'node:os';
import type { Db } from './db.js';
import { ensureState } from './state.js';
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

/** "The state schema or its tables do not exist yet": read as empty by commands that only read. */
export function isMissingState(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === '42P01' || code === '3F000';
}

export async function startRun(db: Db, run: { id: string; command: string; args: Record<string, unknown>; undoes?: string }): Promise<void> {
  await ensureState(db, 'audit');
  await db.query('runs_start', [run.id, run.command, db.ids.schema, JSON.stringify(run.args), run.undoes ?? null, CLIENT_HOST]);
}

export async function finishRun(db: Db, id: string, status: 'done' | 'interrupted' | 'failed', error?: string): Promise<number> {
  const [row] = await db.query<{ rows_changed: number }>('runs_finish', [id, status, error ?? null]);
  return row?.rows_changed ?? 0;
}

export async function listRuns(db: Db, opts: { limit: number; command?: string; allSchemas?: boolean }): Promise<RunRecord[]> {
  try {
    const rows = await db.query<RunRow>('runs_list', [opts.limit, opts.command ?? null, opts.allSchemas ? null : db.ids.schema]);
    return rows.map(toRun);
  } catch (err) {
    if (isMissingState(err)) return [];
    throw err;
  }
}

export async function getRun(db: Db, id: string): Promise<RunRecord | undefined> {
  try {
    const [row] = await db.query<RunRow>('runs_get', [id]);
    return row ? toRun(row) : undefined;
  } catch (err) {
    if (isMissingState(err)) return undefined;
    throw err;
  }
}

export interface AuditRecord {
  rowId: string;
  before: RowImage;
  after: RowImage;
}

/**
 * Every audited row of a run, in the order written, read whole batches at a time (about `pageSize`
 * rows). Only called for a run that exists, so the state schema does too: it is brought up to date
 * first (an audit written by an earlier version moves into audit_batches), except in a read-only
 * session (a hot standby, default_transaction_read_only), where DDL is refused: it is read as it is.
 */
export async function readRunAudit(db: Db, runId: string, pageSize = 5000): Promise<AuditRecord[]> {
  const [session] = await db.raw<{ read_only: boolean }>("SELECT current_setting('transaction_read_only') = 'on' AS read_only");
  if (!session?.read_only) await ensureState(db, 'audit');
  const out: AuditRecord[] = [];
  let lastSeq = 0;
  for (;;) {
    const page = await db.query<{ row_id: string; before: RowImage; change: Partial<RowImage>; batch_seq: number }>('audit_run_page', [runId, lastSeq, pageSize]);
    if (!page.length) return out;
    // The after-image is the before-image with the batch's change, as the audit view gives it.
    for (const r of page) out.push({ rowId: r.row_id, before: r.before, after: { ...r.before, ...r.change } });
    lastSeq = page[page.length - 1]!.batch_seq;
  }
}
