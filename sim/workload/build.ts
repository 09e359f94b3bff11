import type { SimConfig } from '../config.js';
import type { RngStreams } from '../kernel/rng.js';
import { loadAzureTrace } from './azure.js';
import { parseLengthLaw } from './lengths.js';
import { loadMooncakeTrace } from './mooncake.js';
import { syntheticSource, type TenantSpec } from './synthetic.js';
import { loadServegenShares } from './servegen.js';
import { replayTrace } from './trace.js';
import { arraySource, type WorkloadSource } from './types.js';
import { FleetConfigError, type FleetConfig } from '../fleet/schema.js';

/** Fleet tenants as workload tenants: the plan sets the priority class; explicit adapters add to the count. */
export function fleetTenantSpecs(fleet: FleetConfig): TenantSpec[] {
  const weights = fleetTenantWeights(fleet);
  return fleet.tenants.map((t, i) => ({
    name: t.name,
    weight: weights[i],
    priorityClass: fleet.plans[t.plan].priority === 'premium' ? 0 : 1,
    numAdapters: t.numAdapters + fleet.adapters.filter((a) => a.tenant === t.name).length,
    adapterZipfS: t.adapterZipfS,
  }));
}

/** The workload a config describes: a trace replay when `trace` is set, otherwise synthetic arrivals. */
export function buildWorkload(config: SimConfig, rngs: RngStreams): { source: WorkloadSource; numRequests: number | null } {
  const tenants: TenantSpec[] | undefined = config.fleet !== undefined ? fleetTenantSpecs(config.fleet) : config.workload.tenants?.map((t) => ({ ...t }));
  if (config.trace !== undefined) {
    const t = config.trace;
    const rows = t.format === 'azure' ? loadAzureTrace(t.file) : loadMooncakeTrace(t.file);
    const requests = replayTrace(
      rows,
      { rateScale: t.rateScale, ...(t.startS !== undefined ? { startS: t.startS } : {}), ...(t.endS !== undefined ? { endS: t.endS } : {}), ...(tenants ? { tenants } : {}) },
      rngs,
    );
    return { source: arraySource(requests), numRequests: requests.length };
  }
  const w = config.workload;
  return {
    source: syntheticSource(
      {
        ratePerS: w.rate,
        durationS: w.durationS,
        arrival: w.arrival === 'poisson' ? { process: 'poisson' } : { process: 'gamma', cv: w.cv },
        inputTokens: parseLengthLaw(w.inputTokens, 'workload.inputTokens'),
        outputTokens: parseLengthLaw(w.outputTokens, 'workload.outputTokens'),
        maxSeqLenTokens: config.scheduler.maxSeqLenTokens,
        tenants: tenants ?? [{ name: 'default', weight: 1, priorityClass: 0, numAdapters: 0, adapterZipfS: 1 }],
        ...(w.diurnal !== undefined ? { diurnal: w.diurnal } : {}),
      },
      rngs,
    ),
    numRequests: null,
  };
}

/** Tenant weights after `fleet.popularity`: each tier keeps its total, spread by rank within the tier. */
export function fleetTenantWeights(fleet: FleetConfig): number[] {
  const pop = fleet.popularity;
  if (pop.source === 'weights') return fleet.tenants.map((t) => t.weight);
  const shares = pop.source === 'servegen' ? loadServegenShares(pop.file, pop.pool) : null;
  const out = fleet.tenants.map((t) => t.weight);
  const tiers = [...new Set(fleet.tenants.map((t) => t.tier))];
  for (const tier of tiers) {
    const idx = fleet.tenants.map((t, i) => (t.tier === tier ? i : -1)).filter((i) => i >= 0);
    const total = idx.reduce((a, i) => a + fleet.tenants[i].weight, 0);
    let ranked: number[];
    if (shares === null) ranked = idx.map((_, k) => 1 / Math.pow(k + 1, (pop as { s: number }).s));
    else {
      if (shares.length < idx.length) throw new FleetConfigError(`fleet.popularity: ServeGen pool ${(pop as { pool: string }).pool} has ${shares.length} clients, tier ${tier} has ${idx.length} tenants; allowed: a pool with at least as many clients`);
      ranked = shares.slice(0, idx.length);
    }
    const sum = ranked.reduce((a, b) => a + b, 0);
    idx.forEach((i, k) => (out[i] = (total * ranked[k]) / sum));
  }
  return out;
}
