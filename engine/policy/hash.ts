// Deterministic 53-bit hashing for prefix-cache keys. Two independent 32-bit mixes are combined so
// that accidental collisions (which would silently share the wrong KV) stay negligible even with
// millions of cached blocks; 53 bits keep the key an exact JavaScript number.

function mix32(h: number, value: number): number {
  // murmur3's 32-bit finaliser applied to a running state; imul keeps every step in int32.
  let k = Math.imul(value | 0, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  return h;
}

function finish32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hashes a list of integers (each reduced to 53 bits' worth by splitting high and low words). */
export function hashInts(values: readonly number[]): number {
  let a = 0x9747b28c;
  let b = 0x2f6b1d3e;
  for (const v of values) {
    const lo = v % 0x100000000;
    const hi = Math.floor(v / 0x100000000);
    a = mix32(mix32(a, lo), hi);
    b = mix32(mix32(b, hi ^ 0x5bd1e995), lo);
  }
  return finish32(a) * 0x200000 + (finish32(b) >>> 11);
}

/** A stable 53-bit key for a string (adapter names, tenant names). */
export function hashString(text: string): number {
  const codes: number[] = [];
  for (let i = 0; i < text.length; i++) codes.push(text.charCodeAt(i));
  codes.push(text.length);
  return hashInts(codes);
}

/** The chain hash of a full KV block: its parent's hash, its content key, and the adapter. */
export function chainHash(parentHash: number, contentKey: number, adapterKey: number): number {
  return hashInts([parentHash, contentKey, adapterKey]);
}

/** PromptContent over real token ids (the engine's case). */
export function tokenContent(tokens: ArrayLike<number>): { rangeKey(start: number, end: number): number } {
  return {
    rangeKey(start: number, end: number): number {
      const slice: number[] = [];
      for (let i = start; i < end; i++) slice.push(tokens[i]);
      return hashInts(slice);
    },
  };
}
