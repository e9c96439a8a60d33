import { Option, type Command } from 'commander';
import { formatCount } from '../../core/text.js';
import { parsePositiveInt } from '../../core/validate.js';
import { ExitCode } from '../../errors.js';
import { recentRuns, RunsResultSchema, type RunsResult } from '../../ops/runs.js';
import { openDb } from '../options.js';
import { printJson } from '../output.js';
import type { Style } from '../render.js';
import { act } from '../run.js';

interface RunsOptions {
  limit: string;
  command?: string;
}

export function register(program: Command): void {
  program
    .command('runs')
    .description('recent repair runs (fix-duplicates, mark-stale, undo): id, command, when, by whom, rows changed')
    .addOption(new Option('--limit <n>', 'runs to list').default('20'))
    .addOption(new Option('--command <name>', 'only runs of this command').choices(['fix-duplicates', 'mark-stale', 'undo']))
    .action(
      act<RunsOptions>(async (ctx, o) => {
        const limit = parsePositiveInt(o.limit, '--limit');
        const db = await openDb(ctx.g);
        ctx.defer(() => db.close());
        const result = await recentRuns(db, { limit, command: o.command });
        if (ctx.g.json) printJson(RunsResultSchema, result);
        else ctx.print(render(result, ctx.style));
        return ExitCode.OK;
      }),
    );
}

export function render(r: RunsResult, s: Style): string {
  if (!r.runs.length) return s.dim('no repair runs recorded yet');
  const status = (x: string) => (x === 'done' ? s.ok(x) : x === 'running' ? s.accent(x) : s.warn(x));
  return s.table(
    ['run id', { header: 'command', shrink: true, id: true }, 'started (UTC)', { header: 'by', shrink: true, min: 8 }, { header: 'from', shrink: true, drop: 1 }, { header: 'rows changed', shrink: true, min: 7 }, 'status'],
    r.runs.map((x) => [x.id, x.undoes ? `undo ${x.undoes}` : x.command, x.startedAt, x.by, [x.clientHost, x.clientAddr].filter(Boolean).join(' ') || 'local socket', formatCount(x.rowsChanged), status(x.status)]),
  );
}
