// What the database says about the history ids a scan saw. Pure: the caller runs the query.
import type { ScanAccumulator } from './accumulator.js';

/** Rows the database says about the scanned history ids: `sent` already, or no row at all. */
export class RowCheck {
  private readonly sentIds: string[] = [];
  private readonly missingIds: string[] = [];
  sent = 0;
  missing = 0;
  checked = 0;

  constructor(private readonly examples: number) {}

  record(historyIds: readonly string[], statusById: ReadonlyMap<string, string>): void {
    for (const h of historyIds) {
      this.checked++;
      const status = statusById.get(h.toLowerCase());
      if (status === undefined) {
        this.missing++;
        if (this.missingIds.length < this.examples) this.missingIds.push(h.toLowerCase());
      } else if (status === 'sent') {
        this.sent++;
        if (this.sentIds.length < this.examples) this.sentIds.push(h.toLowerCase());
      }
    }
  }

  /** Counts and examples, each with its first entry id and entry count as the whole scan saw them. */
  result(scan: ScanAccumulator) {
    const example = (historyId: string) => {
      const seen = scan.lookup(historyId);
      return { historyId, firstEntryId: seen?.firstEntryId ?? '', entries: seen?.count ?? 0 };
    };
    return {
      checked: this.checked,
      sent: { count: this.sent, examples: this.sentIds.map(example) },
      missing: { count: this.missing, examples: this.missingIds.map(example) },
    };
  }
}
