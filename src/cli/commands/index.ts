// The command list. Each module exports register(program); keep one line per command.
import type { Command } from 'commander';
import { register as inspect } from './inspect.js';
import { register as migrate } from './migrate.js';
import { register as streams } from './streams.js';
import { register as fixDuplicates } from './fix-duplicates.js';
import { register as markStale } from './mark-stale.js';
import { register as undo } from './undo.js';
import { register as runs } from './runs.js';
import { register as replay } from './replay.js';

export function registerCommands(program: Command): void {
  inspect(program);
  migrate(program);
  streams(program);
  fixDuplicates(program);
  markStale(program);
  undo(program);
  runs(program);
  replay(program);
}
