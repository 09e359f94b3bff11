// Time is passed in: the real engine reads a monotonic wall clock, the fake runner a virtual one,
// so the same loop is deterministic under the fake runner.

export interface Clock {
  /** Integer microseconds since the clock's origin. */
  nowUs(): number;
  /** Returns once nowUs() >= timeUs. */
  sleepUntilUs(timeUs: number): Promise<void>;
}

/** Below this many µs to a wake-up the real clock spins instead of setting a timer. */
const SPIN_US = 3000;

/** Monotonic wall time from the moment of construction. */
export class RealClock implements Clock {
  private readonly originMs = performance.now();

  nowUs(): number {
    return Math.floor((performance.now() - this.originMs) * 1000);
  }

  async sleepUntilUs(timeUs: number): Promise<void> {
    // Timers fire up to a few ms late, and a late wake delays the step that admits the arrival
    // (TTFT the simulator would not see). So: timer sleep until SPIN_US before the target, then
    // yield to the event loop in a spin (setImmediate) until the target; the wake is then within
    // tens of µs. Bound: each pass sleeps or spins towards the target; the clock is monotonic.
    for (let pass = 0; pass < 100_000_000; pass++) {
      const leftUs = timeUs - this.nowUs();
      if (leftUs <= 0) return;
      if (leftUs > SPIN_US) await new Promise<void>((resolve) => setTimeout(resolve, Math.floor((leftUs - SPIN_US) / 1000)));
      else await new Promise<void>((resolve) => setImmediate(resolve));
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
