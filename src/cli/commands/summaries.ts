// What the command listing (`digest-doctor --help`, and commander's "did you mean" after an unknown
// command) shows of each command: its name, description, arguments and options, as plain data. In
// the tsc output this is undefined and the listing imports every command's module (with its
// operations, zod schemas and drivers); scripts/bundle.mjs replaces this module in the bundle with
// the commands' own registrations serialised at build time, so the bundled `--help` imports none of
// them and prints the same text.

/** One command as the listing shows it; `args` are commander's terms (`<run-id>`, `[file...]`). */
export interface CommandSummary {
  name: string;
  aliases: string[];
  description: string;
  summary: string;
  hidden: boolean;
  helpGroup: string;
  args: string[];
  options: { flags: string; description: string; hidden: boolean }[];
}

export const COMMAND_SUMMARIES: readonly CommandSummary[] | undefined = undefined;
