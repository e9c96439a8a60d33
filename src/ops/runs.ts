// `runs`: the recent repair runs recorded in the tool's schema: id, command, when, by whom, how many
// rows they changed, and whether they finished. Reads only; an absent state schema is no runs yet.
import * as z from 'zod';
import { effectiveRunStatus } from '../core/repair.js';
import { listRuns } from '../postgres/audit.js';
import type { Db } from '../postgres/db.js';
import { iso } from './repair.js';

export const RUNS_SCHEMA_VERSION = 1 as const;

export const RunSummarySchema = z.object({
  id: z.string(),
  command: z.string(),
  schema: z.string(),
  /** done | interrupted (killed, or its session is gone) | failed | running */
  status: z.string(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  /** The database user. */
  by: z.string(),
  clientAddr: z.string().nullable(),
  clientHost: z.string().nullable(),
  applicationName: z.string(),
  rowsChanged: z.number().int(),
  /** For an undo: the run it undid. */
  undoes: z.string().nullable(),
  error: z.string().nullable(),
  args: z.record(z.string(), z.unknown()),
});
export type RunSummary = z.infer<typeof RunSummarySchema>;

export const RunsResultSchema = z.object({
  schemaVersion: z.literal(RUNS_SCHEMA_VERSION),
  command: z.literal('runs'),
  filters: z.object({ limit: z.number().int(), command: z.string().nullable() }),
  runs: z.array(RunSummarySchema),
});
export type RunsResult = z.infer<typeof RunsResultSchema>;

export async function recentRuns(db: Db, input: { limit: number; command?: string }): Promise<RunsResult> {
  const runs = await listRuns(db, input);
  return {
    schemaVersion: RUNS_SCHEMA_VERSION,
    command: 'runs',
    filters: { limit: input.limit, command: input.command ?? null },
    runs: runs.map((r) => ({
      id: r.id,
      command: r.command,
      schema: r.tableSchema,
      status: effectiveRunStatus(r.status, r.sessionAlive),
      startedAt: iso(r.startedAt),
      finishedAt: r.finishedAt ? iso(r.finishedAt) : null,
      by: r.dbUser,
      clientAddr: r.clientAddr,
      clientHost: r.clientHost,
      applicationName: r.applicationName,
      rowsChanged: r.rowsChanged,
      undoes: r.undoes,
      error: r.error,
      args: r.args,
    })),
  };
}
