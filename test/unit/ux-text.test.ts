import { describe, expect, it } from 'vitest';
import { keyPrefixPhrases, rerunWithPrefixLead, withGlobalFlags, withGlobalFlagsDeep } from '../../src/core/hints.js';
import { layoutTable, shortenIds, tableWidth, visibleWidth, wrapText } from '../../src/core/layout.js';
import { durationFlag, formatDuration, noun, plural, progressLine } from '../../src/core/text.js';
import { parseDuration } from '../../src/core/validate.js';
import { fitLines } from '../../src/cli/render.js';

describe('plural', () => {
  it('agrees with the count, English regular rules on the last word', () => {
    expect(plural(1, 'group')).toBe('1 group');
    expect(plural(0, 'group')).toBe('0 groups');
    expect(plural(1, 'entry')).toBe('1 entry');
    expect(plural(3, 'entry')).toBe('3 entries');
    expect(plural(2, 'batch')).toBe('2 batches');
    expect(plural(1, 'extra row')).toBe('1 extra row');
    expect(plural(2, '(user, day) group')).toBe('2 (user, day) groups');
    expect(plural(284000, 'entry')).toBe('284,000 entries');
    expect(noun(2, 'day')).toBe('days'); // vowel + y
  });
});

describe('formatDuration', () => {
  it('two largest units, zero parts dropped', () => {
    expect(formatDuration(10 * 60_000)).toBe('10m');
    expect(formatDuration(65 * 60_000)).toBe('1h 5m');
    expect(formatDuration(3_600_000)).toBe('1h');
    expect(formatDuration(86_400_000 + 3_600_000 + 61_000)).toBe('1d 1h');
    expect(formatDuration(45_000)).toBe('45s');
    expect(formatDuration(999)).toBe('0s');
    expect(formatDuration(250, { millis: true })).toBe('250ms');
    expect(formatDuration(-120_000)).toBe('-2m');
    expect(formatDuration(Number.NaN)).toBe('unknown');
  });
  it('durationFlag reads back through parseDuration to the same milliseconds', () => {
    for (const ms of [3_600_000, 5_400_000, 1_500, 604_800_000, 86_400_000 * 3, 90_000]) expect(parseDuration(durationFlag(ms))).toBe(ms);
    expect(durationFlag(3_600_000)).toBe('1h');
    expect(durationFlag(5_400_000)).toBe('90m');
  });
});

describe('progressLine', () => {
  it('done of total, percentage, rate and the time left at that rate', () => {
    // 284,000 in 10 s: 28,400/s; 16,000 left at that rate is 0.56 s
    expect(progressLine(284_000, 300_000, 'entry', 10_000)).toBe('284,000 of 300,000 entries (94%), 28,400/s, about 0s left');
    // 100 of 1,000 rows in 20 s: 5/s, 900 left = 180 s
    expect(progressLine(100, 1000, 'row', 20_000)).toBe('100 of 1,000 rows (10%), 5/s, about 3m left');
    expect(progressLine(1, undefined, 'entry', 0)).toBe('1 entry');
  });
});

describe('layoutTable', () => {
  const id = '6af5e7d3-e736-46da-bfc1-42786f2ab1c0';
  it('leaves a table that fits as it is, and drops a column with nothing in it', () => {
    const l = layoutTable(['a', 'b', ''], [[id, 'x', '']], 80);
    expect(l).toEqual({ kind: 'table', headers: ['a', 'b'], rows: [[id, 'x']], hidden: [] });
  });
  it('shortens ids first, then wraps, then hides the lowest-value column and says which', () => {
    const cols = [{ header: 'id', id: true }, { header: 'note', shrink: true, min: 10 }, { header: 'extra', drop: 1 }];
    const rows = [[id, 'a long note that needs wrapping to fit', 'x'.repeat(30)]];
    const l = layoutTable(cols, rows, 50);
    expect(l.kind).toBe('table');
    if (l.kind !== 'table') return;
    expect(l.hidden).toEqual(['extra']);
    expect(l.rows[0]![0]).toBe('6af5e7d3');
    const widths = l.headers.map((h, i) => Math.max(visibleWidth(h), ...l.rows.map((r) => visibleWidth(r[i]!))));
    expect(tableWidth(widths)).toBeLessThanOrEqual(50);
    expect(l.rows[0]![1]!.split('\n').length).toBeGreaterThan(1);
  });
  it('wraps at spaces only: a word (an index name, a timestamp, an id) is never cut, the records layout takes over', () => {
    const cols = [{ header: 'name', shrink: true }, { header: 'ledger', shrink: true, min: 10 }];
    const rows = [['ux_digest_history_user_date', 'applied, 1 attempt, by postgres 2026-12-01T11:07:40.275Z']];
    // 27 columns for the name, 24 for the timestamp, 7 of padding and borders: 58 fits, 57 does not
    const fits = layoutTable(cols, rows, 58);
    expect(fits.kind).toBe('table');
    if (fits.kind === 'table') {
      expect(fits.rows[0]![0]).toBe('ux_digest_history_user_date');
      expect(fits.rows[0]![1]!.split('\n')).toContain('2026-12-01T11:07:40.275Z');
    }
    const narrow = layoutTable(cols, rows, 57);
    expect(narrow).toEqual({ kind: 'records', headers: ['name', 'ledger'], rows });
    // an id in a column marked as holding ids is shortened first, and then fits whole
    const undo = layoutTable([{ header: 'command', shrink: true, id: true }, 'status'], [[`undo ${id}`, 'done']], 26);
    expect(undo).toEqual({ kind: 'table', headers: ['command', 'status'], rows: [['undo 6af5e7d3', 'done']], hidden: [] });
  });
  it('one record per row when nothing else fits', () => {
    const l = layoutTable(['a', 'b'], [['x'.repeat(40), 'y'.repeat(40)]], 30);
    expect(l.kind).toBe('records');
  });
  it('shortenIds and wrapText', () => {
    expect(shortenIds(`key digest:lock:${id}.`)).toBe('key digest:lock:6af5e7d3.');
    expect(wrapText('aaa bbb ccc', 7)).toBe('aaa bbb\nccc');
    expect(wrapText('abcdefghij', 4)).toBe('abcd\nefgh\nij');
  });
  it('fitLines: prose wraps, a command breaks with a continuation', () => {
    const out = fitLines('[FAIL] 3 rows are stuck: run digest-doctor --schema incident --state-schema dd mark-stale --older-than 1h, then look again', 50);
    for (const l of out.split('\n')) expect(l.length).toBeLessThanOrEqual(50);
    expect(out.replace(/ \\\n\s*/g, ' ').replace(/\n\s*/g, ' ')).toBe('[FAIL] 3 rows are stuck: run digest-doctor --schema incident --state-schema dd mark-stale --older-than 1h, then look again');
    expect(out).toMatch(/ \\\n/);
  });
});

describe('withGlobalFlags', () => {
  const cmds = ['inspect', 'fix-duplicates', 'mark-stale', 'migrate', 'undo', 'runs'];
  it('inserts the flags after digest-doctor before a command name, quoted for the shell', () => {
    expect(withGlobalFlags('run digest-doctor fix-duplicates --apply', ['--schema', 'inc ident'], cmds)).toBe("run digest-doctor --schema 'inc ident' fix-duplicates --apply");
    expect(withGlobalFlags('`digest-doctor runs` shows it', ['--schema', 's'], cmds)).toBe('`digest-doctor --schema s runs` shows it');
  });
  it('leaves prose and commands that already carry flags alone', () => {
    expect(withGlobalFlags('busy: another digest-doctor migrate holds the lock', ['--schema', 's'], cmds)).toBe('busy: another digest-doctor migrate holds the lock');
    expect(withGlobalFlags('digest-doctor --schema s inspect', ['--schema', 's'], cmds)).toBe('digest-doctor --schema s inspect');
    expect(withGlobalFlags('run digest-doctor fix-duplicates', [], cmds)).toBe('run digest-doctor fix-duplicates');
    // a GitHub annotation's title is not a command
    expect(withGlobalFlags('::error title=digest-doctor inspect%3A x::y', ['--schema', 's'], cmds)).toBe('::error title=digest-doctor inspect%3A x::y');
    expect(withGlobalFlagsDeep({ a: ['x digest-doctor undo 1'], n: 3 }, ['--schema', 's'], cmds)).toEqual({ a: ['x digest-doctor --schema s undo 1'], n: 3 });
  });
});

describe('keyPrefixPhrases / rerunWithPrefixLead (the missing-stream hints)', () => {
  it('names where the run looked and where the key is, the noun agreeing with the count', () => {
    expect(keyPrefixPhrases(undefined, ['prod:'])).toEqual({ here: 'without a key prefix (no --key-prefix given)', elsewhere: "it exists under key prefix 'prod:'" });
    expect(keyPrefixPhrases('stage:', ['a:', ''])).toEqual({ here: "under key prefix 'stage:'", elsewhere: "it exists under key prefixes 'a:', no prefix" });
    expect(keyPrefixPhrases('', []).elsewhere).toBe('');
  });
  it('one candidate: a plain rerun; several: a choice', () => {
    expect(rerunWithPrefixLead(['a:'])).toBe('');
    expect(rerunWithPrefixLead(['a:', 'b:'])).toMatch(/^rerun with your deployment's prefix/);
  });
});
