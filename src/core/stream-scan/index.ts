// `streams --scan`: the fast path that reads a whole stream and checks every event.
//
// Why it exists: a scan reads every entry of a stream (a million or more), and checking each event
// with JSON.parse + DigestGenerateEventSchema (zod) costs about four times the in-place byte check
// (side by side over the service's events), enough to make the check slower than reading. Reading
// the XRANGE replies as bytes and checking the plain events in place (event-bytes.ts), with per-history_id state in typed arrays (accumulator.ts, hash-index.ts, keys.ts),
// makes it faster than a bare read: BENCHMARKS.md, "streams --scan over 1,000,000 entries", scans
// 416,833 entries/s against 334,754 for a raw paged XRANGE loop that decodes and checks nothing
// (ratio 1.25), at 135 MB peak RSS (target: >= 200,000 entries/s, < 200 MB).
//
// How it is held equal to the schema: the fast paths only ever say "valid" or "ask the schema"; an
// event they do not plainly accept goes to JSON.parse + the schema (event.ts), which gives the verdict
// and the error text. Differential tests hold them to that: test/unit/stream-scan.test.ts checks
// plainlyValidEvent and matchPlainEvent against JSON.parse + the schema over field variants and
// random mutations of real events (every "yes" must be the schema's yes, with the same history_id
// and idempotency_key), and test/integration/streams-raw-reader.test.ts checks on a real Redis that
// scanStream over the raw reply bytes reports exactly what ioredis' pages fed to add() report.
//
// Layout: hash-index.ts (one open-addressing table of 2- or 4-word keys), keys.ts (UUIDs as words,
// 64-bit key hashes), event-text.ts (the check of a parsed event), event-bytes.ts (the check of the
// reply bytes), accumulator.ts (the per-entry state and totals), row-check.ts (the database side).
// Every scratch buffer belongs to the accumulator that passes it in; no module holds shared state.
export { ScanAccumulator, type DuplicateExample, type ScanLimits, type ScanTotals } from './accumulator.js';
export { matchPlainEvent, type PlainEventAt } from './event-bytes.js';
export { parseEntryEvent, plainlyValidEvent } from './event-text.js';
export { U128Index } from './hash-index.js';
export { hash64, hash64Bytes, uuidWords, uuidWordsAt, wordsToUuid } from './keys.js';
export { RowCheck } from './row-check.js';
