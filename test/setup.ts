import fc from 'fast-check';

// Every property runs at least 1,000 generated cases (override with FC_NUM_RUNS for soak runs).
// On failure fast-check prints the seed and the path: replay with { seed, path } in the property's
// parameters.
const numRuns = Number(process.env.FC_NUM_RUNS ?? 1000);
fc.configureGlobal({ numRuns, verbose: 1 });
