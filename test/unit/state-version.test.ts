import { describe, expect, it } from 'vitest';
import { adoptedStateVersion, stateVersionFiles } from '../../src/core/state-version.js';

const layout = (entries: Record<string, string>) => new Map(Object.entries(entries));

describe('state versions', () => {
  it('orders NNNN_name.sql files, ignores other names, refuses a gap or a repeat', () => {
    expect(stateVersionFiles(['0002_b.sql', 'README', '0001_a.sql']).map((f) => [f.version, f.name])).toEqual([[1, 'a'], [2, 'b']]);
    expect(() => stateVersionFiles(['0001_a.sql', '0003_c.sql'])).toThrow(/expected version 2/);
    expect(() => stateVersionFiles(['0001_a.sql', '0001_b.sql'])).toThrow(/expected version 2/);
  });

  it('adopts the layouts the earlier releases left', () => {
    expect(adoptedStateVersion(layout({}))).toBe(0);
    expect(adoptedStateVersion(layout({ schema_migrations: 'r' }))).toBe(0);
    expect(adoptedStateVersion(layout({ runs: 'r', audit: 'r' }))).toBe(1);
    expect(adoptedStateVersion(layout({ runs: 'r', audit: 'r', schema_migrations: 'r' }))).toBe(1);
    expect(adoptedStateVersion(layout({ runs: 'r', audit_batches: 'r', audit: 'v' }))).toBe(2);
    expect(adoptedStateVersion(layout({ runs: 'r', audit_batches: 'r', audit: 'v', schema_migrations: 'r' }))).toBe(3);
    // version 4 is in the columns of audit_batches (undo's typed keys)
    const v3 = layout({ runs: 'r', audit_batches: 'r', audit: 'v', schema_migrations: 'r' });
    expect(adoptedStateVersion(v3, ['run_id', 'row_ids', 'befores', 'changes'])).toBe(3);
    expect(adoptedStateVersion(v3, ['run_id', 'row_ids', 'befores', 'changes', 'tids', 'statuses_before', 'sent_ats_before', 'statuses_after'])).toBe(4);
    // a per-row table beside audit_batches is no layout a release left: adopt nothing
    expect(adoptedStateVersion(layout({ runs: 'r', audit_batches: 'r', audit: 'r' }))).toBe(0);
  });
});
