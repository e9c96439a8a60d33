// The zod schemas of inspect's --json documents (src/ops/inspect.ts): a module of their own, built only
// when imported (the CLI imports it for --json only; the library entry, src/index.ts, exports them).
import * as z from 'zod';
import { FindingSchema } from '../core/finding-schema.js';
import { AGE_BUCKETS } from '../core/duplicates.js';
import { INSPECT_SCHEMA_VERSION } from './inspect-version.js';

export const DuplicateGroupSchema = z.object({
  userId: z.string(),
  digestDate: z.string(),
  rows: z.number().int(),
  ids: z.array(z.string()),
  statuses: z.array(z.string()),
  createdAt: z.array(z.string()),
  oldestAgeMs: z.number(),
  newestAgeMs: z.number(),
});

const FiltersSchema = z.object({
  user: z.string().nullable(),
  date: z.string().nullable(),
  since: z.string().nullable(),
  limit: z.number().int(),
  stuckAfterMs: z.number(),
});

export const InspectSummarySchema = z.object({
  schemaVersion: z.literal(INSPECT_SCHEMA_VERSION),
  command: z.literal('inspect'),
  mode: z.literal('summary'),
  now: z.string(),
  filters: FiltersSchema,
  duplicates: z.object({
    totalGroups: z.number().int(),
    /** In-flight rows in those groups. */
    totalRows: z.number().int(),
    /** Rows a repair would mark failed (rows minus one per group). */
    extraRows: z.number().int(),
    groups: z.array(DuplicateGroupSchema),
  }),
  inFlightByAge: z.object(Object.fromEntries(AGE_BUCKETS.map((b) => [b, z.number().int()])) as Record<(typeof AGE_BUCKETS)[number], z.ZodNumber>),
  inFlightTotal: z.number().int(),
  stuck: z.object({ count: z.number().int(), olderThanMs: z.number(), oldestCreatedAt: z.string().nullable() }),
  statusCounts: z.record(z.string(), z.number().int()),
  /** digest:lock:* keys with no TTL, or more TTL left than the lock allows (SCAN on every master). */
  locks: z.union([
    z.object({
      skipped: z.literal(false),
      stale: z.array(z.object({ key: z.string(), kind: z.enum(['user', 'group']), ttlMs: z.number().nullable(), maxTtlMs: z.number(), reason: z.string() })),
    }),
    z.object({ skipped: z.literal(true), reason: z.string() }),
  ]),
  /**
   * With --date or --since: what the window left out (rows of other digest dates), so a filtered view
   * never reads as "nothing wrong" about rows it did not look at. null without a filter.
   */
  outsideWindow: z
    .object({ rows: z.number().int(), inFlight: z.number().int(), stuck: z.number().int(), duplicateGroups: z.number().int() })
    .nullable(),
  findings: z.array(FindingSchema),
});

const PendingSchema = z.object({ consumer: z.string(), idleMs: z.number(), deliveries: z.number().int() });

export const UserEntrySchema = z.object({
  stream: z.string(),
  id: z.string(),
  addedAt: z.string().nullable(),
  trigger: z.string().nullable(),
  historyId: z.string().nullable(),
  traceId: z.string().nullable(),
  /** DLQ entries: why the worker gave up. */
  dlqReason: z.string().nullable(),
  /** Pending in the stream's group: by whom, idle how long, delivered how many times; null = not pending. */
  pending: PendingSchema.nullable(),
});

export const InspectUserSchema = z.object({
  schemaVersion: z.literal(INSPECT_SCHEMA_VERSION),
  command: z.literal('inspect'),
  mode: z.literal('user'),
  now: z.string(),
  userId: z.string(),
  digestDate: z.string(),
  timeZone: z.string(),
  rows: z.array(
    z.object({
      id: z.string(),
      status: z.string(),
      createdAt: z.string(),
      createdAtLocal: z.string(),
      sentAt: z.string().nullable(),
      ageMs: z.number(),
      inFlight: z.boolean(),
      /** kept: the in-flight row a repair keeps; duplicate: an extra in-flight row; stuck: in flight past the threshold */
      marks: z.array(z.enum(['kept', 'duplicate', 'stuck'])),
    }),
  ),
  duplicateCount: z.number().int(),
  stuckCount: z.number().int(),
  redis: z.union([
    z.object({
      skipped: z.literal(false),
      lock: z.object({ key: z.string(), held: z.boolean(), value: z.string().nullable(), ttlMs: z.number().nullable(), noTtl: z.boolean() }),
      window: z.object({ from: z.string(), to: z.string() }),
      entries: z.array(UserEntrySchema),
      groupsMissing: z.array(z.string()),
      malformed: z.number().int(),
    }),
    z.object({ skipped: z.literal(true), reason: z.string() }),
  ]),
  /** The user's rows on any digest date (counted only when the day asked for has none), and the latest such date. */
  rowsOnOtherDays: z.object({ rows: z.number().int(), latestDate: z.string().nullable() }).nullable(),
  findings: z.array(FindingSchema),
});
