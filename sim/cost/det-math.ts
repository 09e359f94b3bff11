// Natural log and exp from + − × ÷ only, so a calibrated price is bit-identical on every platform
// (the roofline model keeps to the same rule). Accurate to about 1 ulp over the range used here.

const LN2 = 0.6931471805599453;
// LN2 split so that n × LN2_HI is exact for |n| < 2^20 (Cody–Waite reduction).
const LN2_HI = 0.693145751953125;
const LN2_LO = 1.4286068203094173e-6;
const SQRT2 = 1.4142135623730951;

/** Exponent steps 512, 256, ..., 1 and the exact powers of two 2^step, for binary exponent extraction. */
const STEP_K = Float64Array.from([512, 256, 128, 64, 32, 16, 8, 4, 2, 1]);
const STEP_P = Float64Array.from(STEP_K, (k) => pow2Exact(k));

function pow2Exact(k: number): number {
  let v = 1;
  for (let i = 0; i < k; i++) v *= 2;
  return v;
}

/** ln(x) for finite x > 0. */
export function detLn(x: number): number {
  if (!(x > 0) || x === Infinity) throw new RangeError(`detLn: x must be finite and > 0, got ${x}`);
  let m = x;
  let e = 0;
  // Bring m into [1, 2) by exact divisions/multiplications by powers of two.
  if (m >= 2) {
    for (let i = 0; i < 10; i++) {
      if (m >= STEP_P[i]) {
        m /= STEP_P[i];
        e += STEP_K[i];
      }
    }
  } else if (m < 1) {
    for (let i = 0; i < 10; i++) {
      if (m * STEP_P[i] < 2) {
        m *= STEP_P[i];
        e -= STEP_K[i];
      }
    }
  }
  if (m < 1) {
    m *= 2;
    e -= 1;
  }
  if (m > SQRT2) {
    m /= 2;
    e += 1;
  }
  // ln m = 2 atanh(s), s = (m − 1)/(m + 1), |s| ≤ 0.172: 13 odd terms reach below 1e-20.
  const s = (m - 1) / (m + 1);
  const s2 = s * s;
  let term = s;
  let sum = 0;
  for (let i = 1; i <= 25; i += 2) {
    sum += term / i;
    term *= s2;
  }
  return e * LN2_HI + (e * LN2_LO + 2 * sum);
}

/**
 * e^-x, a decay factor: 0 for x past 700 (e^-700 is about 1e-304, nothing a heat or a weight can
 * tell from 0), so a decay over any idle gap, however long, is defined; x >= -700 otherwise.
 */
export function detDecay(x: number): number {
  if (x > 700) return 0;
  return detExp(-x);
}

/** e^y for |y| <= 700. */
export function detExp(y: number): number {
  if (!Number.isFinite(y) || Math.abs(y) > 700) throw new RangeError(`detExp: y must be finite with |y| <= 700, got ${y}`);
  const n = Math.round(y / LN2);
  const r = y - n * LN2_HI - n * LN2_LO; // |r| <= 0.347
  // Taylor series to degree 16: the remainder is below 1e-19 for |r| <= 0.35.
  let term = 1;
  let sum = 1;
  for (let i = 1; i <= 16; i++) {
    term = (term * r) / i;
    sum += term;
  }
  // Scale by 2^n exactly; |n| <= 1010 < 1023, the sum of the steps.
  let scale = 1;
  let k = Math.abs(n);
  for (let i = 0; i < 10 && k > 0; i++) {
    if (k >= STEP_K[i]) {
      scale *= STEP_P[i];
      k -= STEP_K[i];
    }
  }
  return n >= 0 ? sum * scale : sum / scale;
}
