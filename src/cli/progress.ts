// Progress for long work: on stderr, only when stderr is a terminal (silent in CI and pipes).

export interface Progress {
  update(text: string): void;
  done(text?: string): void;
}

export function createProgress(enabled = Boolean(process.stderr.isTTY) && !process.env.CI): Progress {
  if (!enabled) return { update: () => undefined, done: () => undefined };
  let last = 0;
  return {
    update(text) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      process.stderr.write(`\r\x1b[2K${text}`);
    },
    done(text) {
      process.stderr.write(`\r\x1b[2K${text ? text + '\n' : ''}`);
    },
  };
}
