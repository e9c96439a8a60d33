// What the CLI knows of its commands without loading them: their names, and what a command module is
// given when it registers. A module of its own so that run.ts and a command module can import it
// while commands/index.ts loads the command modules (no import comes back to index.ts or main.ts).

/** Every command, in help order; commands/index.ts maps each to its module (typed, so the two cannot drift). */
export const COMMAND_NAMES = ['inspect', 'streams', 'migrate', 'fix-duplicates', 'mark-stale', 'undo', 'runs', 'replay', 'check', 'demo'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

/** What the CLI gives a command module beyond the program it registers on. */
export interface CliHost {
  /**
   * Runs one command line in this process through the CLI's entry (main.ts `main`), as the binary
   * would: `args` is argv after node and the script. Resolves, once the command has finished and
   * closed what it opened, to its exit code (0-4, 70, 130 as the binary's); a failed command does
   * not throw, its error is printed as the binary prints it. process.exitCode is left as it was
   * before the call. Used by `demo` for its steps.
   */
  run(args: readonly string[]): Promise<number>;
}
