// The demo at 80 columns on a terminal: the redis-cli commands it prints (an operator copies them)
// paste back as printed: a wrapped command ends each line with " \", and the reason is a comment
// line of its own, never text after the command that a wrap would push onto a line of its own.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runOnPty } from '../helpers/pty.js';
import { createTestRedis, type TestRedis } from '../helpers/redis.js';

let r: TestRedis;
beforeAll(async () => {
  r = await createTestRedis();
});
afterAll(async () => r?.cleanup());

it('demo at 80 columns: every redis-cli command pastes as one, its reason a comment above it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dd-demo-paste-'));
  try {
    const res = await runOnPty(['--data-dir', join(dir, 'db'), '--redis-url', r.url, '--key-prefix', r.prefix, 'demo'], { cols: 80, timeoutMs: 180_000 });
    expect(res.code, res.output.slice(-3000)).toBe(0);
    const lines = res.output.split(/\r?\n/);
    const commands: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      if (!lines[i]!.startsWith('$ redis-cli ')) continue;
      // the line above is the comment that says why
      expect(lines[i - 1]).toMatch(/^# \S/);
      const first = i;
      let cmd = lines[i]!.slice(2);
      while (cmd.endsWith(' \\')) cmd = `${cmd.slice(0, -2)} ${lines[++i]!.trim()}`;
      for (const l of lines.slice(first, i + 1)) expect(l.length).toBeLessThanOrEqual(80);
      commands.push(cmd);
    }
    const cli = `redis-cli -u ${r.url}`;
    // the demo's facts: its stray consumer, the lock of the incident's user, the DLQ it empties
    expect(commands).toContain(`${cli} XGROUP DELCONSUMER ${r.prefix}stream:digests:generate digest-workers debug-laptop`);
    expect(commands).toContain(`${cli} DEL ${r.prefix}digest:lock:6af5e7d3-e736-46da-bfc1-42786f2ab1c0`);
    expect(commands).toContain(`${cli} XTRIM ${r.prefix}stream:digests:generate:dlq MAXLEN 0`);
    expect(commands.some((c) => new RegExp(`^${cli} XACK ${r.prefix}stream:digests:generate digest-workers \\d+-\\d+$`).test(c))).toBe(true);
    expect(commands).toHaveLength(4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
