// Runs the built binary as a subprocess (npm test builds first).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { releaseEmbedded } from './engine.js';

export const BIN = fileURLToPath(new URL('../../bin/digest-doctor.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs bin/digest-doctor.js (or `opts.bin`, another entry script) with `args`; the exit code and both outputs. */
export async function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; bin?: string } = {}): Promise<CliResult> {
  // the embedded engine is one process at a time: the test lets go of a data directory first
  if (args.includes('--data-dir')) await releaseEmbedded();
  return new Promise((resolve, reject) => {
    // wide by default: tests read the content; the layout at a given width is test/cli/output-width.test.ts's
    // (a test that wants the pipe's default of 80 passes COLUMNS: undefined)
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', COLUMNS: '1000', ...opts.env };
    // The test environment must not leak configuration into the binary unless a test sets it.
    if (!opts.env || !('DATABASE_URL' in opts.env)) delete env.DATABASE_URL;
    if (!opts.env || !('REDIS_URL' in opts.env)) delete env.REDIS_URL;
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    const child = spawn(process.execPath, [opts.bin ?? BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    // decoded as a stream: a character split across two chunks must not become two replacement characters
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
