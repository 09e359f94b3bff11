/**
 * A token bucket on integer microseconds: `ratePerS` tokens per second refill a bucket of
 * `burst` tokens; each admitted request takes one. Over any interval of length T it admits at
 * most ratePerS × T + burst requests (the property test checks this). Refill is computed from the
 * time since the last update, so the bucket costs O(1) per request and needs no timer.
 */
export class TokenBucket {
  private tokens: number;
  private lastUs = 0;

  constructor(
    readonly ratePerS: number,
    readonly burst: number,
  ) {
    if (!(ratePerS > 0) || !Number.isFinite(ratePerS)) throw new RangeError(`rateLimit.ratePerS = ${ratePerS}: must be a positive number`);
    if (!(burst >= 1) || !Number.isFinite(burst)) throw new RangeError(`rateLimit.burst = ${burst}: must be a number >= 1`);
    this.tokens = burst;
  }

  /** Takes one token at `nowUs` if there is one. Times must not decrease. */
  tryTake(nowUs: number): boolean {
    if (nowUs < this.lastUs) throw new RangeError(`token bucket: time ${nowUs} us is before the last request at ${this.lastUs} us`);
    this.tokens = Math.min(this.burst, this.tokens + ((nowUs - this.lastUs) * this.ratePerS) / 1e6);
    this.lastUs = nowUs;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
