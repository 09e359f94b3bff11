/** The virtual clock: integer microseconds that only move forward. sim/ never reads a real clock. */
export class VirtualClock {
  private current = 0;

  get nowUs(): number {
    return this.current;
  }

  advanceTo(timeUs: number): void {
    if (timeUs < this.current) throw new Error(`clock moved backwards: ${timeUs} < ${this.current}`);
    this.current = timeUs;
  }
}

export const US_PER_S = 1_000_000;

/** Seconds to integer microseconds (rounded to nearest), the only way times enter the simulation. */
export function secondsToUs(seconds: number): number {
  return Math.round(seconds * US_PER_S);
}
