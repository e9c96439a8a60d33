// The --json error document's zod schema, a module of its own: loaded only to print one (src/cli/run.ts).
import * as z from 'zod';
import { SCHEMA_VERSION } from './output.js';

export const ErrorDocumentSchema = z.object({
  schemaVersion: z.literal(SCHEMA_VERSION),
  command: z.string(),
  ok: z.literal(false),
  error: z.object({ code: z.string(), message: z.string(), exitCode: z.number().int(), details: z.unknown().optional() }),
});
export type ErrorDocument = z.infer<typeof ErrorDocumentSchema>;
