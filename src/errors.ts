// One error type with a stable code and the exit code it maps to. Messages are one line: the problem and the fix.
// Driver errors (pg, ioredis, sockets) become DoctorErrors in one place: src/core/faults.ts.

export const ExitCode = {
  OK: 0,
  FINDINGS: 1,
  USAGE: 2,
  UNREACHABLE: 3,
  REFUSED: 4,
  INTERNAL: 70,
  /** Ctrl-C or SIGTERM, after cleaning up (128 + SIGINT's 2, as shells report it). */
  INTERRUPTED: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export type ErrorCode =
  | 'BAD_INPUT'
  | 'USAGE'
  | 'SCHEMA_MISMATCH'
  | 'UNREACHABLE'
  | 'AUTH_FAILED'
  | 'TLS_FAILED'
  | 'CONNECTION_LOST'
  | 'REFUSED'
  | 'PERMISSION_DENIED'
  | 'BUSY'
  | 'TIMEOUT'
  /** Work stopped because the user interrupted it (migrate: the build was cancelled on the server). */
  | 'CANCELLED'
  /** The work ran and failed in a way that is a finding, not a fault (migrate: the build or its verification failed). */
  | 'BUILD_FAILED'
  | 'INTERNAL';

const EXIT_BY_CODE: Record<ErrorCode, ExitCodeValue> = {
  BAD_INPUT: ExitCode.USAGE,
  USAGE: ExitCode.USAGE,
  SCHEMA_MISMATCH: ExitCode.USAGE,
  UNREACHABLE: ExitCode.UNREACHABLE,
  AUTH_FAILED: ExitCode.UNREACHABLE,
  TLS_FAILED: ExitCode.UNREACHABLE,
  CONNECTION_LOST: ExitCode.UNREACHABLE,
  REFUSED: ExitCode.REFUSED,
  PERMISSION_DENIED: ExitCode.REFUSED,
  BUSY: ExitCode.REFUSED,
  TIMEOUT: ExitCode.REFUSED,
  CANCELLED: ExitCode.REFUSED,
  BUILD_FAILED: ExitCode.FINDINGS,
  INTERNAL: ExitCode.INTERNAL,
};

export class DoctorError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCodeValue;
  /** Extra structured detail for --json output (e.g. the duplicate groups that made migrate refuse). */
  readonly details?: unknown;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DoctorError';
    this.code = code;
    this.exitCode = EXIT_BY_CODE[code];
    this.details = options.details;
  }
}

export const badInput = (message: string): DoctorError => new DoctorError('BAD_INPUT', message);
