// Whether this process exits as soon as its command has finished (the binary, runBinary), or goes on
// (main() run in-process: the demo's steps, tests). A process that exits next need not wait for its
// servers to close the connections it said goodbye on.
let exitsAfter = false;

/** Marks this process as one that exits right after its command (src/cli/main.ts runBinary). */
export function exitAfterCommand(): void {
  exitsAfter = true;
}

/** Whether exitAfterCommand() was called. */
export function exitsAfterCommand(): boolean {
  return exitsAfter;
}
