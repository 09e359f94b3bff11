/** Values below this are kept exactly; above it, to 10 significant bits. */
const EXACT_BELOW = 2048;

/**
 * The bucket a value is counted in, HdrHistogram-style: exact below 2,048, otherwise rounded
 * down to 10 significant bits (relative error under 0.1%). Without it every step duration is a
 * distinct key and the map (and the sort for percentiles) grows with the run.
 */
function bucketOf(value: number): number {
  if (value < EXACT_BELOW || !Number.isFinite(value)) return value;
  const v = Math.floor(value);
  const bits = v < 2 ** 31 ? 32 - Math.clz32(v) : Math.floor(Math.log2(v)) + 1;
  const scale = 2 ** (bits - 11);
  return Math.floor(v / scale) * scale;
}

/**
 * A multiset of values (microseconds) with counts: a step's gap shared by n sequences is one
 * entry with count n, so recording inter-token latency costs O(1) per step, not O(n). Values are
 * bucketed by `bucketOf` (percentiles within 0.1%; the mean stays exact); percentiles are
 * nearest-rank over the sorted buckets, so insertion order never matters.
 */
export class WeightedSamples {
  private readonly counts = new Map<number, number>();
  private numSamples = 0;
  private sum = 0;

  get size(): number {
    return this.numSamples;
  }

  add(value: number, count = 1): void {
    if (count <= 0) return;
    const key = bucketOf(value);
    this.counts.set(key, (this.counts.get(key) ?? 0) + count);
    this.numSamples += count;
    this.sum += value * count;
  }

  addAll(other: WeightedSamples): void {
    for (const [value, count] of other.counts) this.counts.set(value, (this.counts.get(value) ?? 0) + count);
    this.numSamples += other.numSamples;
    this.sum += other.sum;
  }

  mean(): number {
    return this.numSamples === 0 ? NaN : this.sum / this.numSamples;
  }

  /** Nearest-rank percentiles for sorted `ps` in [0, 100]; NaN when empty. */
  percentiles(ps: readonly number[]): number[] {
    if (this.numSamples === 0) return ps.map(() => NaN);
    const values = [...this.counts.keys()].sort((a, b) => a - b);
    const out: number[] = [];
    let v = 0;
    let seen = this.counts.get(values[0])!;
    for (const p of ps) {
      const rank = Math.max(1, Math.ceil((p / 100) * this.numSamples));
      while (seen < rank) seen += this.counts.get(values[++v])!;
      out.push(values[v]);
    }
    return out;
  }

  max(): number {
    let m = -Infinity;
    for (const k of this.counts.keys()) if (k > m) m = k;
    return this.numSamples === 0 ? NaN : m;
  }
}
