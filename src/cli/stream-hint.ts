// When the digest stream is not where this run looks (the deployment's keys carry a key prefix the
// run was not given, or another one), the commands that read it say so instead of reporting a missing
// group or an empty stream, and print the command to rerun with the prefix that holds it.
import { DIGEST_STREAM } from '../core/contract.js';
import type { RedisClient } from '../redis/connect.js';
import { streamKeyPrefixes } from '../redis/stream-info.js';
import type { CommandContext } from './run.js';

/** Where this run looks, for messages: "under key prefix 'x:'" or "without a key prefix (no --key-prefix)". */
export function prefixPhrase(keyPrefix: string | undefined): string {
  return keyPrefix ? `under key prefix '${keyPrefix}'` : 'without a key prefix (no --key-prefix given)';
}

/** What missingStreamHint found: the message, and the command to rerun with the prefix that holds the stream (null: none does). */
export interface StreamHint {
  message: string;
  /** The part of `message` after where this run looked: "it exists under key prefix 'p:'" (empty when no prefix holds it). */
  elsewhere: string;
  fix: string | null;
}

/**
 * Null when the digest stream exists under this run's key prefix. Otherwise: that it is not there,
 * and either the prefixes it exists under with the command to rerun with the first, or that no key
 * prefix holds it either (a SCAN of the keyspace: streamKeyPrefixes).
 */
export async function missingStreamHint(ctx: CommandContext, client: RedisClient): Promise<StreamHint | null> {
  // TYPE and SCAN: commands README's read-only ACL user has (EXISTS is not among them); a key of another type is streams' finding
  if ((await client.type(DIGEST_STREAM)) !== 'none') return null;
  const here = `no stream ${DIGEST_STREAM} ${prefixPhrase(ctx.g.keyPrefix)}`;
  const prefixes = (await streamKeyPrefixes(client, DIGEST_STREAM)).filter((p) => p !== (ctx.g.keyPrefix ?? ''));
  if (!prefixes.length) return { message: `${here}, nor under any other key prefix: the service has not published yet, or --redis-url names another server`, elsewhere: '', fix: null };
  const list = prefixes.map((p) => (p ? `'${p}'` : 'no prefix')).join(', ');
  const elsewhere = `it exists under ${prefixes.length === 1 ? 'key prefix' : 'key prefixes'} ${list}`;
  return { message: `${here}; ${elsewhere}`, elsewhere, fix: ctx.rerun(['--key-prefix', prefixes[0]!]) };
}

/** One line: the message, `then` (what it meant for this run, if anything), and the command last, so it pastes. */
export function hintLine(h: StreamHint, then = ''): string {
  const head = then ? `${h.message}, ${then}` : h.message;
  return h.fix ? `${head}: rerun with the prefix: ${h.fix}` : head;
}
