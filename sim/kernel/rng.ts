import seedrandom from 'seedrandom';

/** A uniform [0, 1) source; every random draw in sim/ comes from one of these. */
export type Rng = () => number;

/**
 * Seeded random streams, one per component, forked by name: adding draws to one component never
 * shifts another's sequence, so a change to (say) tenant mixing leaves arrival times unchanged.
 */
export class RngStreams {
  private readonly forked = new Map<string, Rng>();

  constructor(readonly seed: number) {
    if (!Number.isSafeInteger(seed)) throw new Error(`seed = ${seed}: must be an integer`);
  }

  /** The stream named `name` (created on first use; the same object afterwards). */
  fork(name: string): Rng {
    let rng = this.forked.get(name);
    if (rng === undefined) {
      // alea is seedrandom's fastest generator with a full 53-bit double output.
      rng = seedrandom.alea(`stratos/${this.seed}/${name}`) as unknown as Rng;
      this.forked.set(name, rng);
    }
    return rng;
  }
}
