import type { SimConfig } from '../config.js';
import type { RngStreams } from '../kernel/rng.js';
import { loadAzureTrace } from './azure.js';
import { parseLengthLaw } from './lengths.js';
import { loadMooncakeTrace } from './mooncake.js';
import { syntheticSource, type TenantSpec } from './synthetic.js';
import { replayTrace } from './trace.js';
import { arraySource, type WorkloadSource } from './types.js';

/** The workload a config describes: a trace replay when `trace` is set, otherwise synthetic arrivals. */
export function buildWorkload(config: SimConfig, rngs: RngStreams): { source: WorkloadSource; numRequests: number | null } {
  const tenants: TenantSpec[] | undefined = config.workload.tenants?.map((t) => ({ ...t }));
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
      },
      rngs,
    ),
    numRequests: null,
  };
}
