// A typo in an option or a command: one line on stderr, the problem and commander's suggestion
// together under the one prefix (the suggestion was a second line of its own, without the prefix).
import { expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

it('a mistyped option or command is one line naming it and the suggestion, exit 2', async () => {
  const option = await runCli(['inspect', '--sinse', '7d']);
  expect(option.code).toBe(2);
  expect(option.stdout).toBe('');
  expect(option.stderr).toBe("digest-doctor: unknown option '--sinse' (Did you mean --since?)\n");
  const command = await runCli(['inpsect']);
  expect(command.code).toBe(2);
  expect(command.stderr).toBe("digest-doctor: unknown command 'inpsect' (Did you mean inspect?)\n");
});
