// `npm start`: the main job. The case study (seed 003) as a fleet-day in simulation: 256 A100-80GB,
// 120 tenants, 7B/13B/70B pools with 60% of requests on 13B, a 9:00–17:00 peak; the baseline stack
// (contiguous KV reserved at 4,096 tokens, CPU sampling, static batching) and the optimized stack
// (paged KV, GPU sampling, continuous batching, multi-tenant LoRA) run in parallel on worker
// threads; the before/after table and the contradictions are printed. Every number is computed.
import { contradictions, renderTable, tableRows } from './stratos/table.js';
import { runStacks } from './stratos/parallel.js';
import { ASSUMED, CASE, FULL_POOLS, peakRatePerS, slaCreditUsdPerWindow, sliceScale } from './stratos/scenario.js';

export interface StartOptions {
  /** Simulate 1/slice of the fleet and of every tenant's traffic (per-GPU figures are unchanged in expectation). */
  readonly slice: number;
  readonly hours: number;
  readonly seed: number;
  readonly parallel: boolean;
  /** Tenant popularity from the ServeGen client shares in this file (default: Zipf). */
  readonly servegenFile?: string;
  /** Let the autoscaler resize the optimized stack's pools (default: all 256 GPUs stay). */
  readonly autoscale?: boolean;
  /** The step cost model: the A100 calibration profile (default) or the analytic roofline. */
  readonly costModel: 'profile' | 'roofline';
}

/** Default: a 1/16 slice of the fleet for the whole day, so both stacks finish within `npm start`'s 2-minute budget on 2 cores. */
export const DEFAULT_START: StartOptions = { slice: 16, hours: 24, seed: 1, parallel: true, costModel: 'profile' };

export async function runStart(o: StartOptions = DEFAULT_START): Promise<void> {
  const t0 = performance.now();
  const durationS = o.hours * 3600;
  process.stderr.write(`simulating the case study's fleet-day (1/${o.slice} slice, ${o.hours} h), baseline and optimized ${o.parallel ? 'in parallel' : 'in turn'} …\n`);
  const [before, after] = await runStacks(
    [
      { stack: 'baseline', slice: o.slice, durationS, seed: o.seed, costModel: o.costModel, ...(o.servegenFile !== undefined ? { servegenFile: o.servegenFile } : {}) },
      { stack: 'optimized', slice: o.slice, durationS, seed: o.seed, costModel: o.costModel, autoscale: o.autoscale === true, ...(o.servegenFile !== undefined ? { servegenFile: o.servegenFile } : {}) },
    ],
    o.parallel,
  );
  const wallS = (performance.now() - t0) / 1000;
  const b = before as Record<string, any>;
  const a = after as Record<string, any>;
  const pools = FULL_POOLS.map((p) => `${p.name} ${p.replicas}+${p.spares}${p.tp > 1 ? ` × TP${p.tp}` : ''}`).join(', ');
  const lines = [
    `Stratos: the case study's fleet before and after, in simulation. Cost model: ${costModelLabel(b)}.`,
    `Fleet: ${CASE.gpus} A100-80GB as pools ${pools} (N+2 each); ${CASE.tenants} tenants (${o.servegenFile !== undefined ? 'ServeGen m-large client shares' : 'Zipf shares'} within each tier; 1 in ${ASSUMED.premiumEvery} premium); ` +
      `requests 30% 7B / 60% 13B / 10% 70B.`,
    `Day: peak ${CASE.peakStartHour}:00–${CASE.peakEndHour}:00 at ${peakRatePerS().toFixed(1)} req/s fleet-wide (340 tokens/s/GPU × 256 GPUs / mean output), ` +
      `off-peak × ${ASSUMED.offPeakFactor}; output log-normal median ${CASE.outputMedianTokens} σ ${ASSUMED.outputSigma}, prompts log-normal median ${ASSUMED.inputMedianTokens} σ ${ASSUMED.inputSigma}.`,
    `Simulated: a 1/${o.slice} slice of that fleet and of every tenant's traffic for ${o.hours} h (baseline ${b.requests.toLocaleString('en-US')} requests, optimized ${a.requests.toLocaleString('en-US')}); ` +
      `monthly GPU cost is scaled back by GPUs (×${sliceScale(o.slice).gpus.toFixed(2)}), each tier's revenue by its traffic cut, SLA credits (per tenant) not at all. Prices: $${(CASE.gpuCostUsdPerMonth / CASE.gpus / 730).toFixed(2)}/GPU-hour ($1.8M/month over 256 GPUs); ` +
      `per-token prices set so the demand earns $4.2M/month; SLA credit $${slaCreditUsdPerWindow()} per violated premium tenant-hour.`,
    '',
    renderTable(tableRows(b, a, o.slice)),
    '',
    `Conservation: baseline ${b.completed} completed + ${b.rejected} rejected + ${b.aborted} aborted + ${b.failed} failed = ${b.requests}; ` +
      `optimized ${a.completed} + ${a.rejected} + ${a.aborted} + ${a.failed} = ${a.requests}. Replica failures (MTBF 2,000 h): ${b.faults.failures} / ${a.faults.failures}; ` +
      `router refusals: ${JSON.stringify(b.router.refusals)} / ${JSON.stringify(a.router.refusals)}.`,
    '',
    'Where the case study contradicts itself or the simulation:',
    ...contradictions(b, a).map((c, i) => wrap(`${i + 1}. ${c}`, 110, ' '.repeat(`${i + 1}. `.length))),
    '',
    `Wall time ${wallS.toFixed(1)} s${o.autoscale === true ? ' (optimized stack autoscaled)' : ''}. Whole fleet: npm start -- --slice 1 (see npm run bench:fleet for its cost).`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

function costModelLabel(summary: Record<string, any>): string {
  const m = summary.cost_model as { name?: string; calibration?: string } | undefined;
  return m === undefined ? 'unknown' : `${m.name} (${m.calibration})`;
}

function wrap(text: string, width: number, indent: string): string {
  const words = text.split(' ');
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line.length + w.length + 1 > width && line.length > 0) {
      lines.push(line);
      line = indent + w;
    } else line = line.length === 0 ? w : `${line} ${w}`;
  }
  if (line.length > 0) lines.push(line);
  return lines.join('\n');
}
