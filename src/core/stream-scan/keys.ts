// The compact identities the scan keeps instead of strings: a UUID as four 32-bit words, any other
// key (idempotency keys) as a 64-bit hash in two words, each from a string or from reply bytes.
// Every function writes into an `out` array the caller passes (the accumulator keeps one of its
// own), so nothing is allocated per entry and no two callers share a buffer; without `out`, a
// fresh array is returned.

/** Hex digit value by char code (either case), -1 for any other character. */
export const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) HEX['0123456789abcdef'.charCodeAt(i)] = HEX['0123456789ABCDEF'.charCodeAt(i)] = i;

/**
 * The first 32 hex digits in b[s, e) as four 32-bit words, big-endian by digit (either case; any
 * other byte, such as a UUID's dashes, is skipped). Returns `out`.
 */
function hexWords(b: Uint8Array, s: number, e: number, out: Uint32Array): Uint32Array {
  let w = 0;
  let nibbles = 0;
  for (let i = s; i < e; i++) {
    const v = HEX[b[i]!] ?? -1;
    if (v < 0) continue;
    w = (w << 4) | v;
    if ((++nibbles & 7) === 0) {
      out[(nibbles >> 3) - 1] = w;
      if (nibbles === 32) break;
      w = 0;
    }
  }
  return out;
}

const encoder = new TextEncoder();

/**
 * A UUID string as four 32-bit words (case does not matter; the dashes are skipped): the words
 * uuidWordsAt gives for the same text as bytes. Returns `out`.
 */
export function uuidWords(uuid: string, out: Uint32Array = new Uint32Array(4)): Uint32Array {
  const b = encoder.encode(uuid);
  return hexWords(b, 0, b.length, out);
}

/** uuidWords of the 36 ASCII bytes of a UUID at b[s, s + 36), read in place. Returns `out`. */
export function uuidWordsAt(b: Uint8Array, s: number, out: Uint32Array = new Uint32Array(4)): Uint32Array {
  return hexWords(b, s, s + 36, out);
}

const hex8 = (n: number) => n.toString(16).padStart(8, '0');
/** The inverse of uuidWords: four words as a lower-case 8-4-4-4-12 UUID. */
export function wordsToUuid(w: readonly number[]): string {
  const [a, b, c, d] = w.map(hex8) as [string, string, string, string];
  return `${a}-${b.slice(0, 4)}-${b.slice(4)}-${c.slice(0, 4)}-${c.slice(4)}${d}`;
}

/** murmur3's 32-bit finaliser. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A 64-bit hash of any string (two independent 32-bit lanes over its UTF-16 code units, FNV-1a
 * style, each finalised) in out[0] and out[1]: a compact identity for idempotency keys. Returns `out`.
 */
export function hash64(s: string, out: Uint32Array = new Uint32Array(2)): Uint32Array {
  let a = 0x811c9dc5;
  let b = 0x5bd1e995;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    a = Math.imul(a ^ ch, 0x01000193);
    b = Math.imul(b ^ ch, 0x27d4eb2d) ^ (b >>> 15);
  }
  out[0] = fmix(a ^ s.length);
  out[1] = fmix(b);
  return out;
}

/** hash64 of the ASCII text at b[s, e): the same words as hash64 of that string. Returns `out`. */
export function hash64Bytes(b: Uint8Array, s: number, e: number, out: Uint32Array = new Uint32Array(2)): Uint32Array {
  let a = 0x811c9dc5;
  let h = 0x5bd1e995;
  for (let i = s; i < e; i++) {
    const ch = b[i]!;
    a = Math.imul(a ^ ch, 0x01000193);
    h = Math.imul(h ^ ch, 0x27d4eb2d) ^ (h >>> 15);
  }
  out[0] = fmix(a ^ (e - s));
  out[1] = fmix(h);
  return out;
}
