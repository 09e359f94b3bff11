/**
 * fast-check parameters for a property whose bound has known rare counterexamples (each test file
 * keeps its case as an expected failure): a fixed seed, so CI does not pass or fail by chance.
 * FC_SEED=<n> picks another seed, FC_SEED=random draws one per run (exploration).
 */
export const knownCounterexampleSeed: { seed?: number } = process.env.FC_SEED === 'random' ? {} : { seed: Number(process.env.FC_SEED ?? 20261207) };
