/** Values below this are kept exactly; above it, to 10 significant bits. */
const EXACT_BELOW = 2048;

/**
 * The bucket a value is counted in, HdrHistogram-style: exact below 2,048, otherwise rounded
 * down to 10 significant bits (relative error under 0.1%). Without it every step duration is a
 * distinct key and the map (and the sort for percentiles) grows with the run.
 */
export function bucketOf(value: number): number {
  if (value < EXACT_BELOW || !Number.isFinite(value)) return value;
  const v = Math.floor(value);
  if (v < 2 ** 31) {
    // The hot path (every recorded gap): clear the bits below the 11 leading ones. Same result as
    // the general branch: floor(v / 2^shift) × 2^shift with shift = bit length − 11.
    const shift = 21 - Math.clz32(v);
    return (v >>> shift) << shift;
  }
  const bits = Math.floor(Math.log2(v)) + 1;
  const scale = 2 ** (bits - 11);
  return Math.floor(v / scale) * scale;
}

/**
 * How many consecutive integers share `value`'s bucket `key` (= bucketOf(value)), counted from the
 * key: 2^shift for an integer value in [2048, 2^31), whose bucket drops its low `shift` bits; 0
 * (no range known) otherwise, where bucketOf is cheap or not a range.
 */
export function bucketWidth(value: number, key: number): number {
  if (!(value >= 2048 && value < 2 ** 31) || (value | 0) !== value) return 0;
  const width = 1 << (21 - Math.clz32(value));
  return key + width > value ? width : 0;
}

/** Dense indexes: exact keys [0, 2048), then 1,024 per power of two up to 2^31. */
const NUM_DENSE_INDEXES = EXACT_BELOW + 20 * 1024;
const CHUNK_BITS = 8;
const CHUNK_SIZE = 1 << CHUNK_BITS;
const NUM_CHUNKS = NUM_DENSE_INDEXES / CHUNK_SIZE;

/** The dense index of a bucket key (a bucketOf result) that is an integer in [0, 2^31); -1 otherwise. */
export function denseIndexOf(key: number): number {
  if (!(key >= 0 && key < 2 ** 31) || (key | 0) !== key) return -1;
  if (key < EXACT_BELOW) return key;
  // key = top << shift with top in [1024, 2048) and shift = bit length − 11 >= 1.
  const bits = 32 - Math.clz32(key);
  return EXACT_BELOW + (bits - 12) * 1024 + ((key >>> (bits - 11)) - 1024);
}

/** Inverse of denseIndexOf. */
function keyOfDenseIndex(index: number): number {
  if (index < EXACT_BELOW) return index;
  const rest = index - EXACT_BELOW;
  const shift = (rest >> 10) + 1;
  return (1024 + (rest & 1023)) << shift;
}

/**
 * A multiset of values (microseconds) with counts: a step's gap shared by n sequences is one
 * entry with count n, so recording inter-token latency costs O(1) per step, not O(n). Values are
 * bucketed by `bucketOf` (percentiles within 0.1%; the mean stays exact); percentiles are
 * nearest-rank over the sorted buckets, so insertion order never matters.
 *
 * Storage: the counts of integer buckets below 2^31 (every latency in practice) live in
 * 256-entry chunks of a dense index, allocated on first use, so an add is two array indexings
 * rather than a hash-map update; any other key (fractional, negative, >= 2^31) goes to a map.
 */
export class WeightedSamples {
  // Chunks are plain arrays: a typed array this size has an off-heap buffer, several times slower to allocate.
  private readonly chunks: (number[] | undefined)[] = new Array(NUM_CHUNKS).fill(undefined);
  private other: Map<number, number> | null = null;
  private numSamples = 0;
  private sum = 0;
  /** The buckets with a count, ascending, and their counts: built on first use after a change. */
  private sortedKeys: Float64Array | null = null;
  private sortedCounts: Float64Array | null = null;

  get size(): number {
    return this.numSamples;
  }

  add(value: number, count = 1): void {
    if (count <= 0) return;
    this.addToBucket(bucketOf(value), count);
    this.numSamples += count;
    this.sum += value * count;
  }

  /**
   * Adds `count` samples already bucketed to `key` (= bucketOf of each value) whose values sum to
   * `sumOfValues`: a run of steps recorded at once. Same state as adding the values one by one.
   */
  addBucketed(key: number, count: number, sumOfValues: number): void {
    if (count <= 0) return;
    this.addToBucket(key, count);
    this.numSamples += count;
    this.sum += sumOfValues;
  }

  /**
   * addBucketed for a key whose dense index (denseIndexOf(key) >= 0) the caller computed once for
   * several histograms: the same state, one index computation saved per histogram.
   */
  addAtDenseIndex(index: number, count: number, sumOfValues: number): void {
    if (count <= 0) return;
    this.sortedKeys = null;
    this.chunk(index >> CHUNK_BITS)[index & (CHUNK_SIZE - 1)] += count;
    this.numSamples += count;
    this.sum += sumOfValues;
  }

  /**
   * Segments from..to-1 of a decode run, each `times` over: segment s has steps[s] samples in
   * bucket keys[s] (dense index indexes[s], or -1) summing to sums[s]. The same state as calling
   * addAtDenseIndex / addBucketed per segment with steps[s]·times and sums[s]·times: the counts
   * and sums are integers below 2^53, so adding their totals once changes no sum.
   */
  addSegments(indexes: readonly number[], keys: readonly number[], steps: readonly number[], sums: readonly number[], from: number, to: number, times: number): void {
    if (!(times > 0) || to <= from) return;
    this.sortedKeys = null;
    let numSamples = 0;
    let sum = 0;
    for (let s = from; s < to; s++) {
      const count = steps[s] * times;
      const index = indexes[s];
      if (index >= 0) this.chunk(index >> CHUNK_BITS)[index & (CHUNK_SIZE - 1)] += count;
      else this.addToBucket(keys[s], count);
      numSamples += count;
      sum += sums[s] * times;
    }
    this.numSamples += numSamples;
    this.sum += sum;
  }

  addAll(other: WeightedSamples): void {
    this.sortedKeys = null;
    for (let c = 0; c < NUM_CHUNKS; c++) {
      const from = other.chunks[c];
      if (from === undefined) continue;
      const into = this.chunk(c);
      for (let i = 0; i < CHUNK_SIZE; i++) into[i] += from[i];
    }
    if (other.other !== null) {
      const map = (this.other ??= new Map());
      other.other.forEach((count, key) => {
        map.set(key, (map.get(key) ?? 0) + count);
      });
    }
    this.numSamples += other.numSamples;
    this.sum += other.sum;
  }

  /**
   * Removes `other`'s samples, which must all be in this multiset (e.g. a subset recorded twice:
   * once among all, once apart): counts and sums are integers below 2^53, so the result is exactly
   * the multiset of the rest. Throws when a bucket would go negative.
   */
  subtractAll(other: WeightedSamples): void {
    this.sortedKeys = null;
    for (let c = 0; c < NUM_CHUNKS; c++) {
      const from = other.chunks[c];
      if (from === undefined) continue;
      const into = this.chunks[c];
      for (let i = 0; i < CHUNK_SIZE; i++) {
        if (from[i] === 0) continue;
        if (into === undefined || into[i] < from[i]) throw new RangeError(`subtractAll: bucket ${keyOfDenseIndex(c * CHUNK_SIZE + i)} has fewer samples than the ones removed`);
        into[i] -= from[i];
      }
    }
    if (other.other !== null) {
      other.other.forEach((count, key) => {
        const have = this.other?.get(key) ?? 0;
        if (have < count) throw new RangeError(`subtractAll: bucket ${key} has fewer samples than the ones removed`);
        if (have === count) this.other!.delete(key);
        else this.other!.set(key, have - count);
      });
    }
    this.numSamples -= other.numSamples;
    this.sum -= other.sum;
  }

  mean(): number {
    return this.numSamples === 0 ? NaN : this.sum / this.numSamples;
  }

  /** Nearest-rank percentiles for sorted `ps` in [0, 100]; NaN when empty. */
  percentiles(ps: readonly number[]): number[] {
    if (this.numSamples === 0) return ps.map(() => NaN);
    const [values, counts] = this.sorted();
    const out: number[] = [];
    let v = 0;
    let seen = counts[0];
    for (const p of ps) {
      const rank = Math.max(1, Math.ceil((p / 100) * this.numSamples));
      while (seen < rank) seen += counts[++v];
      out.push(values[v]);
    }
    return out;
  }

  max(): number {
    if (this.numSamples === 0) return NaN;
    let m = -Infinity;
    if (this.other !== null) for (const k of this.other.keys()) if (k > m) m = k;
    for (let c = NUM_CHUNKS - 1; c >= 0; c--) {
      const chunk = this.chunks[c];
      if (chunk === undefined) continue;
      for (let i = CHUNK_SIZE - 1; i >= 0; i--) {
        if (chunk[i] === 0) continue;
        const k = keyOfDenseIndex(c * CHUNK_SIZE + i);
        return k > m ? k : m;
      }
    }
    return m;
  }

  private addToBucket(key: number, count: number): void {
    this.sortedKeys = null;
    const index = denseIndexOf(key);
    if (index >= 0) {
      this.chunk(index >> CHUNK_BITS)[index & (CHUNK_SIZE - 1)] += count;
    } else {
      const map = (this.other ??= new Map());
      map.set(key, (map.get(key) ?? 0) + count);
    }
  }

  private chunk(c: number): number[] {
    let chunk = this.chunks[c];
    if (chunk === undefined) this.chunks[c] = chunk = new Array<number>(CHUNK_SIZE).fill(0);
    return chunk;
  }

  /** The buckets with a count in ascending order, and their counts. */
  private sorted(): [Float64Array, Float64Array] {
    if (this.sortedKeys !== null && this.sortedCounts !== null) return [this.sortedKeys, this.sortedCounts];
    const keys: number[] = [];
    const counts: number[] = [];
    for (let c = 0; c < NUM_CHUNKS; c++) {
      const chunk = this.chunks[c];
      if (chunk === undefined) continue;
      for (let i = 0; i < CHUNK_SIZE; i++) {
        if (chunk[i] === 0) continue;
        keys.push(keyOfDenseIndex(c * CHUNK_SIZE + i));
        counts.push(chunk[i]);
      }
    }
    let sortedKeys = Float64Array.from(keys);
    let sortedCounts = Float64Array.from(counts);
    if (this.other !== null && this.other.size > 0) {
      // Rare keys outside the dense range: merge them in by one sort of (key, count) pairs.
      const pairs: [number, number][] = keys.map((k, i) => [k, counts[i]]);
      for (const [k, n] of this.other) pairs.push([k, n]);
      pairs.sort((a, b) => a[0] - b[0]);
      sortedKeys = Float64Array.from(pairs, (p) => p[0]);
      sortedCounts = Float64Array.from(pairs, (p) => p[1]);
    }
    this.sortedKeys = sortedKeys;
    this.sortedCounts = sortedCounts;
    return [sortedKeys, sortedCounts];
  }
}
