// The command list. Each module exports register(program); keep one line per command.
import type { Command } from 'commander';
import { register as inspect } from './inspect.js';
import { register as migrate } from './migrate.js';
import { register as streams } from './streams.js';

export function registerCommands(program: Command): void {
  inspect(program);
  migrate(program);
  streams(program);
}
