// Interpolation of efficiency over a (possibly incomplete) tensor grid: multilinear in
// ln(axis value + offset), on ln(efficiency). A power law between two grid points is reproduced
// exactly (e.g. a latency-bound kernel whose efficiency grows in proportion to its size), and
// beyond the grid the efficiency is held at the edge, so time keeps scaling with the roofline.
import { detExp, detLn } from './det-math.js';

export interface GridAxis {
  readonly name: string;
  readonly offset: number;
  /** Strictly increasing. */
  readonly values: readonly number[];
}

export class EfficiencyGrid {
  readonly axes: readonly GridAxis[];
  private readonly u: Float64Array[];
  /** ln(efficiency), NaN where missing; row-major, last axis fastest. */
  private readonly lnEff: Float64Array;
  private readonly strides: number[];
  /** 1 where the point was measured, 0 where it was filled by clamping. */
  private readonly measured: Uint8Array;
  // Scratch for efficiency(): no allocation per call (see locate).
  private readonly lo = new Int32Array(4);
  private readonly t = new Float64Array(4);
  private readonly lastX = new Float64Array(4).fill(NaN);
  /** The same for efficiencyApprox (its cells may differ from efficiency()'s by rounding). */
  private readonly loApprox = new Int32Array(4);
  private readonly tApprox = new Float64Array(4);
  private readonly lastXApprox = new Float64Array(4).fill(NaN);

  constructor(axes: readonly GridAxis[], efficiency: readonly (number | null)[]) {
    if (axes.length === 0 || axes.length > 4) throw new Error(`a grid needs 1 to 4 axes, got ${axes.length}`);
    this.axes = axes;
    let size = 1;
    this.strides = new Array<number>(axes.length);
    for (let a = axes.length - 1; a >= 0; a--) {
      this.strides[a] = size;
      size *= axes[a].values.length;
    }
    if (efficiency.length !== size) throw new Error(`grid of ${size} points has ${efficiency.length} efficiencies`);
    this.u = axes.map((axis) => {
      if (axis.values.length === 0) throw new Error(`axis ${axis.name} has no values`);
      for (let i = 1; i < axis.values.length; i++) {
        if (!(axis.values[i] > axis.values[i - 1])) throw new Error(`axis ${axis.name} must be strictly increasing`);
      }
      return Float64Array.from(axis.values, (v) => detLn(v + axis.offset));
    });
    this.lnEff = new Float64Array(size);
    let present = 0;
    for (let i = 0; i < size; i++) {
      const e = efficiency[i];
      if (e === null) this.lnEff[i] = NaN;
      else {
        if (!(e > 0) || !Number.isFinite(e)) throw new Error(`efficiency must be finite and > 0, got ${e} at index ${i}`);
        this.lnEff[i] = detLn(e);
        present++;
      }
    }
    if (present === 0) throw new Error('a grid needs at least one measured point');
    this.measured = Uint8Array.from(this.lnEff, (v) => (Number.isNaN(v) ? 0 : 1));
    this.fillMissing();
  }

  /**
   * Grid points that were not measured (shapes beyond a run's memory caps) take the efficiency of
   * the nearest measured point along each axis in turn (from smaller values first), the same
   * clamping as beyond the grid's edge: priced time keeps scaling with the roofline there, and
   * the interpolation stays continuous. Measured points are never changed.
   */
  private fillMissing(): void {
    const d = this.axes.length;
    for (let pass = 0; pass < d + 1; pass++) {
      let missing = 0;
      for (let a = d - 1; a >= 0; a--) {
        const n = this.u[a].length;
        const stride = this.strides[a];
        for (let start = 0; start < this.lnEff.length; start++) {
          if (Math.floor(start / stride) % n !== 0) continue; // each line along axis a once
          let last = NaN;
          for (let i = 0; i < n; i++) {
            const idx = start + i * stride;
            if (Number.isNaN(this.lnEff[idx])) {
              if (!Number.isNaN(last)) this.lnEff[idx] = last;
            } else last = this.lnEff[idx];
          }
          last = NaN;
          for (let i = n - 1; i >= 0; i--) {
            const idx = start + i * stride;
            if (Number.isNaN(this.lnEff[idx])) {
              if (!Number.isNaN(last)) this.lnEff[idx] = last;
            } else last = this.lnEff[idx];
          }
        }
      }
      for (let i = 0; i < this.lnEff.length; i++) if (Number.isNaN(this.lnEff[i])) missing++;
      if (missing === 0) return;
    }
  }

  get size(): number {
    return this.lnEff.length;
  }

  /** Efficiency at `point` (one value per axis, in axis order). */
  efficiency(point: readonly number[]): number {
    this.locate(point, this.lo, this.t, this.lastX, false);
    const ln = this.blend(this.lo, this.t);
    return detExp(Number.isNaN(ln) ? this.lnEff[this.nearestPresent(this.lo, this.t)] : ln);
  }

  /**
   * efficiency() computed with the platform's Math.log and Math.exp instead of the deterministic
   * ones: faster, and within about 1e-12 (relative) of it, but not bit-identical across platforms.
   * Only for estimates whose use does not depend on the last bits (the cost model's pre-check of a
   * step's rounding). Keeps its own cache, so efficiency() is unaffected.
   */
  efficiencyApprox(point: readonly number[]): number {
    this.locate(point, this.loApprox, this.tApprox, this.lastXApprox, true);
    const ln = this.blend(this.loApprox, this.tApprox);
    return Math.exp(Number.isNaN(ln) ? this.lnEff[this.nearestPresent(this.loApprox, this.tApprox)] : ln);
  }

  /**
   * The cell of `point` on every axis: lower index `lo[a]` and weight `t[a]` of the upper one.
   * `lo[a]` and `t[a]` stay valid while the axis-a value equals `lastX[a]` (callers repeat most
   * axes: a decode run keeps its batch and page size), so only the axes that changed pay for their
   * log and search.
   */
  private locate(point: readonly number[], lo: Int32Array, t: Float64Array, lastX: Float64Array, approx: boolean): void {
    const d = this.axes.length;
    for (let a = 0; a < d; a++) {
      if (point[a] === lastX[a]) continue;
      const u = this.u[a];
      const n = u.length;
      const x = point[a] + this.axes[a].offset;
      if (!(x > 0)) throw new Error(`axis ${this.axes[a].name}: ${point[a]} is outside the domain`);
      const ux = approx ? Math.log(x) : detLn(x);
      if (n === 1 || ux <= u[0]) {
        lo[a] = 0;
        t[a] = 0;
      } else if (ux >= u[n - 1]) {
        lo[a] = n - 2;
        t[a] = 1;
      } else {
        let i = 0;
        let j = n - 2;
        while (i < j) {
          // binary search for the last i with u[i] <= ux (bounded: halves each pass)
          const mid = (i + j + 1) >> 1;
          if (u[mid] <= ux) i = mid;
          else j = mid - 1;
        }
        lo[a] = i;
        t[a] = (ux - u[i]) / (u[i + 1] - u[i]);
      }
      lastX[a] = point[a];
    }
  }

  /** ln(efficiency) blended over the cell's present corners; NaN when none has weight. */
  private blend(lo: Int32Array, t: Float64Array): number {
    const d = this.axes.length;
    let wSum = 0;
    let acc = 0;
    for (let corner = 0; corner < 1 << d; corner++) {
      let w = 1;
      let idx = 0;
      for (let a = 0; a < d; a++) {
        const hi = (corner >> a) & 1;
        const n = this.u[a].length;
        const i = n === 1 ? 0 : lo[a] + hi;
        w *= n === 1 ? (hi ? 0 : 1) : hi ? t[a] : 1 - t[a];
        idx += i * this.strides[a];
      }
      if (w === 0) continue;
      const v = this.lnEff[idx];
      if (Number.isNaN(v)) continue;
      wSum += w;
      acc += w * v;
    }
    return wSum > 0 ? acc / wSum : NaN;
  }

  /**
   * The curve efficiency() follows along axis `axis` with every other axis held at `point`'s value:
   * ln(efficiency) at each grid value of that axis (`lnEff[j]`, at `u[j]` = ln(value + offset)),
   * linear in u between them and held beyond the ends. Exact in real arithmetic (efficiency() may
   * differ by rounding): with the other axes' weights fixed, the corner blend is affine in the
   * axis' own weight t. Null where some corner is missing (then the blend's denominator moves with
   * t and the curve is not piecewise linear), or on a one-value axis. Does not disturb the cache
   * of efficiency().
   */
  lnEfficiencyAlong(point: readonly number[], axis: number): { readonly u: Float64Array; readonly lnEff: Float64Array } | null {
    const d = this.axes.length;
    const u = this.u[axis];
    const n = u.length;
    if (n < 2) return null;
    const lo = new Int32Array(d);
    const t = new Float64Array(d);
    for (let a = 0; a < d; a++) {
      if (a === axis) continue;
      const ua = this.u[a];
      const x = point[a] + this.axes[a].offset;
      if (!(x > 0)) throw new Error(`axis ${this.axes[a].name}: ${point[a]} is outside the domain`);
      const ux = detLn(x);
      if (ua.length === 1 || ux <= ua[0]) {
        lo[a] = 0;
        t[a] = 0;
      } else if (ux >= ua[ua.length - 1]) {
        lo[a] = ua.length - 2;
        t[a] = 1;
      } else {
        let i = 0;
        while (i < ua.length - 2 && ua[i + 1] <= ux) i++; // bounded by the axis length
        lo[a] = i;
        t[a] = (ux - ua[i]) / (ua[i + 1] - ua[i]);
      }
    }
    const lnEff = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      lo[axis] = j < n - 1 ? j : n - 2;
      t[axis] = j < n - 1 ? 0 : 1;
      let wSum = 0;
      let acc = 0;
      for (let corner = 0; corner < 1 << d; corner++) {
        let w = 1;
        let idx = 0;
        for (let a = 0; a < d; a++) {
          const hi = (corner >> a) & 1;
          const na = this.u[a].length;
          w *= na === 1 ? (hi ? 0 : 1) : hi ? t[a] : 1 - t[a];
          idx += (na === 1 ? 0 : lo[a] + hi) * this.strides[a];
        }
        // Every corner the axis' weight can reach must be present, whatever its weight here.
        let reachable = true;
        for (let a = 0; a < d && reachable; a++) {
          if (a === axis) continue;
          const hi = (corner >> a) & 1;
          const na = this.u[a].length;
          if (na === 1 ? hi === 1 : hi ? t[a] === 0 : t[a] === 1) reachable = false;
        }
        if (reachable && Number.isNaN(this.lnEff[idx])) return null;
        if (w === 0) continue;
        wSum += w;
        acc += w * this.lnEff[idx];
      }
      if (!(wSum > 0)) return null;
      lnEff[j] = acc / wSum;
    }
    return { u: Float64Array.from(u), lnEff };
  }

  /** The measured point closest in grid-index distance to the cell corner nearest `t` (deterministic ties: lowest index). */
  private nearestPresent(lo: Int32Array, t: Float64Array): number {
    const d = this.axes.length;
    const target = Array.from(lo.subarray(0, d), (l, a) => l + (t[a] >= 0.5 && this.u[a].length > 1 ? 1 : 0));
    let best = -1;
    let bestDist = Infinity;
    for (let idx = 0; idx < this.lnEff.length; idx++) {
      if (Number.isNaN(this.lnEff[idx])) continue;
      let dist = 0;
      for (let a = 0; a < d; a++) {
        const i = Math.floor(idx / this.strides[a]) % this.u[a].length;
        dist += Math.abs(i - target[a]);
      }
      if (dist < bestDist) {
        bestDist = dist;
        best = idx;
      }
    }
    return best;
  }

  /** Grid indices of flat index `idx`. */
  indices(idx: number): number[] {
    return this.axes.map((axis, a) => Math.floor(idx / this.strides[a]) % axis.values.length);
  }

  measuredAt(idx: number): number | null {
    return this.measured[idx] ? detExp(this.lnEff[idx]) : null;
  }

  /**
   * Leave-one-out estimate of the efficiency at grid point `idx` from its grid neighbours, as the
   * interpolation would compute it had this point not been measured: along every axis where both
   * neighbours are measured, linear in the axis' log coordinate on ln(efficiency); the axis
   * estimates are averaged (in ln). `edge` is true when no axis has both neighbours: the estimate
   * is then the nearest one-sided neighbour (the clamping used beyond the grid), or null if none.
   */
  leaveOneOut(idx: number): { estimate: number; edge: boolean } | null {
    const ind = this.indices(idx);
    let sum = 0;
    let count = 0;
    let oneSided = NaN;
    const at = (j: number): number => (this.measured[j] ? this.lnEff[j] : NaN);
    for (let a = 0; a < this.axes.length; a++) {
      const i = ind[a];
      const n = this.u[a].length;
      const below = i > 0 ? at(idx - this.strides[a]) : NaN;
      const above = i < n - 1 ? at(idx + this.strides[a]) : NaN;
      if (!Number.isNaN(below) && !Number.isNaN(above)) {
        const u = this.u[a];
        const t = (u[i] - u[i - 1]) / (u[i + 1] - u[i - 1]);
        sum += below + t * (above - below);
        count++;
      } else if (Number.isNaN(oneSided)) {
        oneSided = !Number.isNaN(below) ? below : above;
      }
    }
    if (count > 0) return { estimate: detExp(sum / count), edge: false };
    if (!Number.isNaN(oneSided)) return { estimate: detExp(oneSided), edge: true };
    return null;
  }
}
