// The one hash table of the scan: fixed-width keys of 32-bit words -> dense ordinals.

/**
 * Keys of `width` 32-bit words (2: a 64-bit hash, 4: a 128-bit UUID) -> dense ordinals 0..size-1,
 * in the order keys were first interned. Open addressing with linear probing over an Int32Array of
 * ordinals (-1: empty), kept at most 3/4 full; the keys themselves sit in one Uint32Array, `width`
 * words per ordinal, so the table holds no object per key. Words are passed as separate numbers
 * (`c` and `d` are ignored, and hashed as 0, when `width` is 2) so the hot path allocates nothing;
 * signed inputs (results of ^ and |) are taken as their unsigned 32-bit values.
 */
export class HashIndex {
  private keys: Uint32Array;
  private slots: Int32Array;
  private mask: number;
  size = 0;

  /** `initialCapacity`: keys it takes before its first rehash or key-array growth. */
  constructor(
    readonly width: 2 | 4,
    initialCapacity = 1024,
  ) {
    let cap = 16;
    while (cap * 3 < initialCapacity * 4) cap *= 2;
    this.slots = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
    this.keys = new Uint32Array(Math.max(16, initialCapacity) * width);
  }

  /** Mixes up to four words (absent ones are 0) into a 32-bit slot hash. */
  private static hash(a: number, b: number, c: number, d: number): number {
    let h = a ^ Math.imul(b, 0x9e3779b1) ^ Math.imul(c, 0x85ebca6b) ^ Math.imul(d, 0xc2b2ae35);
    h ^= h >>> 16;
    h = Math.imul(h, 0x7feb352d);
    h ^= h >>> 15;
    h = Math.imul(h, 0x846ca68b);
    return (h ^ (h >>> 16)) >>> 0;
  }

  /** The ordinal of the key, or -1. */
  find(a: number, b: number, c = 0, d = 0): number {
    const i = this.probe(a >>> 0, b >>> 0, c >>> 0, d >>> 0);
    return this.slots[i]!;
  }

  /**
   * The slot holding the key (words already unsigned; c and d ignored at width 2), or the empty
   * slot where it would go: the one probe loop both find and intern use.
   */
  private probe(a: number, b: number, c: number, d: number): number {
    const keys = this.keys;
    const slots = this.slots;
    const mask = this.mask;
    const w = this.width;
    if (w === 2) c = d = 0;
    for (let i = HashIndex.hash(a, b, c, d) & mask; ; i = (i + 1) & mask) {
      const o = slots[i]!;
      if (o < 0) return i;
      const k = o * w;
      if (keys[k] === a && keys[k + 1] === b && (w === 2 || (keys[k + 2] === c && keys[k + 3] === d))) return i;
    }
  }

  /** The key's ordinal; a new key gets the next one (check `size` before and after to tell). */
  intern(a: number, b: number, c = 0, d = 0): number {
    // compared with Uint32Array cells: signed inputs (results of ^ and |) must be made unsigned
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const i = this.probe(a, b, c, d);
    const found = this.slots[i]!;
    if (found >= 0) return found;
    const o = this.size++;
    const w = this.width;
    if ((o + 1) * w > this.keys.length) this.keys = grow(this.keys, this.keys.length * 2);
    const k = o * w;
    this.keys[k] = a;
    this.keys[k + 1] = b;
    if (w === 4) {
      this.keys[k + 2] = c;
      this.keys[k + 3] = d;
    }
    this.slots[i] = o;
    if (this.size * 4 > this.slots.length * 3) this.rehash();
    return o;
  }

  /** The `width` words of the key with this ordinal (0 <= o < size). */
  keyAt(o: number): number[] {
    return Array.from(this.keys.subarray(o * this.width, (o + 1) * this.width));
  }

  /** Doubles the slots and places every ordinal again (the keys and their ordinals do not move). */
  private rehash(): void {
    const cap = this.slots.length * 2;
    this.slots = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
    const w = this.width;
    const keys = this.keys;
    for (let o = 0; o < this.size; o++) {
      const k = o * w;
      let i = HashIndex.hash(keys[k]!, keys[k + 1]!, w === 4 ? keys[k + 2]! : 0, w === 4 ? keys[k + 3]! : 0) & this.mask;
      while (this.slots[i]! >= 0) i = (i + 1) & this.mask;
      this.slots[i] = o;
    }
  }
}

/** 128-bit keys (UUIDs as four words, see uuidWords) -> dense ordinals: a HashIndex of width 4. */
export class U128Index extends HashIndex {
  constructor(initialCapacity = 1024) {
    super(4, initialCapacity);
  }
}

type Growable = Uint32Array | Uint16Array | Float64Array | Int32Array | Uint8Array;

/** A copy of `a` with room for `n` elements, of the same typed-array kind. */
export function grow<T extends Growable>(a: T, n: number): T {
  const b = new (a.constructor as new (length: number) => T)(n);
  b.set(a as ArrayLike<number>);
  return b;
}
