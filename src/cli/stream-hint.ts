// When the digest stream is not where this run looks (the deployment's keys carry a key prefix the
// run was not given, or another one), the commands that read it say so instead of reporting a missing
// group or an empty stream, and print the command to rerun with the prefix that holds it.
import { DIGEST_STREAM } from '../core/contract.js';
import { keyPrefixPhrases, rerunWithPrefixLead } from '../core/hints.js';
import type { RedisClient } from '../redis/connect.js';
import { streamKeyPrefixes } from '../redis/stream-info.js';
import type { CommandContext } from './run.js';

/** What missingStreamHint found: the message, and the command to rerun with the prefix that holds the stream (null: none does). */
export interface StreamHint {
  message: string;
  /** With several prefixes holding the stream, the words that make the rerun a choice ('' with one: rerunWithPrefixLead). */
  lead: string;
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
  const prefixes = (await streamKeyPrefixes(client, DIGEST_STREAM)).filter((p) => p !== (ctx.g.keyPrefix ?? ''));
  const words = keyPrefixPhrases(ctx.g.keyPrefix, prefixes);
  const here = `no stream ${DIGEST_STREAM} ${words.here}`;
  if (!prefixes.length) return { message: `${here}, nor under any other key prefix: the service has not published yet, or --redis-url names another server`, lead: '', elsewhere: '', fix: null };
  return { message: `${here}; ${words.elsewhere}`, lead: rerunWithPrefixLead(prefixes), elsewhere: words.elsewhere, fix: ctx.rerun(['--key-prefix', prefixes[0]!]) };
}

/** One line: the message, `then` (what it meant for this run, if anything), and the command last, so it pastes. */
export function hintLine(h: StreamHint, then = ''): string {
  const head = then ? `${h.message}, ${then}` : h.message;
  return h.fix ? `${head}: ${h.lead || 'rerun with the prefix'}: ${h.fix}` : head;
}
