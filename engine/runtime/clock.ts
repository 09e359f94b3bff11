// Time is passed in: the real engine reads a monotonic wall clock, the fake runner a virtual one,
// so the same loop is deterministic under the fake runner.

export interface Clock {
  /** Integer microseconds since the clock's origin. */
  nowUs(): number;
  /** Returns once nowUs() >= timeUs. */
  sleepUntilUs(timeUs: number): Promise<void>;
}

/** Monotonic wall time from the moment of construction. */
export class RealClock implements Clock {
  private readonly originMs = performance.now();

  nowUs(): number {
    return Math.floor((performance.now() - this.originMs) * 1000);
  }

  async sleepUntilUs(timeUs: number): Promise<void> {
    // Bound: each pass sleeps until the target or returns; the clock is monotonic.
    for (let pass = 0; pass < 1_000_000; pass++) {
      const leftUs = timeUs - this.nowUs();
      if (leftUs <= 0) return;
      await new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, Math.floor(leftUs / 1000))));
    }
  }
}

/** Time that moves only when told to: by the fake runner's step durations and by idling. */
export class VirtualClock implements Clock {
  private timeUs = 0;

  nowUs(): number {
    return this.timeUs;
  }

  advance(us: number): void {
    if (!Number.isSafeInteger(us) || us < 0) throw new Error(`virtual clock: advance by ${us} µs; must be a non-negative integer`);
    this.timeUs += us;
  }

  async sleepUntilUs(timeUs: number): Promise<void> {
    if (timeUs > this.timeUs) this.timeUs = timeUs;
  }
}
