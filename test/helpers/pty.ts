// Runs the built CLI on a pseudo-terminal (util-linux `script`), so stdin and stdout are TTYs, and
// answers a prompt: the answer is written only once the prompt has appeared.
import { spawn } from 'node:child_process';
import { BIN } from './cli.js';

export interface PtyResult {
  code: number | null;
  /** Everything the terminal showed (stdout and stderr together, CR LF line ends). */
  output: string;
  /** Whether the prompt appeared. */
  asked: boolean;
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * `cols`: the terminal's width (stty cols), with COLUMNS removed so the program reads the terminal.
 * `bin`: the script node runs (default bin/digest-doctor.js).
 * `eof`: once the prompt appears, end the input (Ctrl-D at the start of a line) instead of answering.
 * `env` values set to undefined are removed from the child's environment.
 */
export function runOnPty(args: string[], opts: { answer?: string; eof?: boolean; prompt?: RegExp; timeoutMs?: number; env?: NodeJS.ProcessEnv; cols?: number; bin?: string } = {}): Promise<PtyResult> {
  const prompt = opts.prompt ?? /\[y\/N\]/;
  const run = [process.execPath, opts.bin ?? BIN, ...args].map(shellQuote).join(' ');
  const cmd = opts.cols ? `stty cols ${Math.floor(opts.cols)} rows 50 && exec ${run}` : run;
  return new Promise((resolve, reject) => {
    // without `cols` the terminal has no size: COLUMNS (wide, for tests that read the content) decides
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', TERM: 'dumb', COLUMNS: '1000', ...opts.env };
    delete env.DATABASE_URL;
    delete env.REDIS_URL;
    if (opts.cols) delete env.COLUMNS;
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let asked = false;
    // decoded as a stream: a character split across two chunks must not become two replacement characters
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    const onData = (d: string) => {
      output += d;
      if (!asked && prompt.test(output)) {
        asked = true;
        if (opts.eof) child.stdin.write('\x04');
        else if (opts.answer !== undefined) child.stdin.write(`${opts.answer}\n`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output: output.replace(/\r\n/g, '\n'), asked });
    });
  });
}
