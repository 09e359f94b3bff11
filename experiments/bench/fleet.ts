// `npm run bench:fleet`: wall time of the case study's fleet-day at iteration-level fidelity, one
// stack at a time on one core (the bar: ≤ 60 s). Wall-clock timing lives here, never in sim/.
//   BENCH_FLEET_SLICE=N   simulate 1/N of the fleet (default 1: all 256 GPUs)
//   BENCH_FLEET_HOURS=H   simulated hours from midnight (default 24)
//   BENCH_FLEET_STACKS=a,b  which stacks (default optimized,baseline)
//   BENCH_FLEET_COST_MODEL=profile|roofline  (default profile, the A100 calibration profile)
import { parseSimConfig } from '../../sim/config.js';
import { runConfig } from '../../sim/run.js';
import { scenarioConfig, type Stack } from '../stratos/scenario.js';

const slice = Number(process.env.BENCH_FLEET_SLICE ?? 1);
const hours = Number(process.env.BENCH_FLEET_HOURS ?? 24);
const stacks = (process.env.BENCH_FLEET_STACKS ?? 'optimized,baseline').split(',') as Stack[];
const costModel = (process.env.BENCH_FLEET_COST_MODEL ?? 'profile') as 'profile' | 'roofline';

process.stdout.write(`stratos bench:fleet (${costModel} cost model; node ${process.version}; 1/${slice} of 256 A100s, ${hours} h)\n`);
for (const stack of stacks) {
  const config = parseSimConfig(scenarioConfig({ stack, slice, durationS: hours * 3600, seed: 1, costModel }));
  const t0 = performance.now();
  const { summary } = runConfig(config);
  const wallS = (performance.now() - t0) / 1000;
  const s = summary as Record<string, any>;
  const gpus = Object.values<any>(s.pools).reduce((a, p) => a + (p.replicas_initial + p.spares) * p.tp, 0);
  process.stdout.write(
    [
      stack.padEnd(10),
      `${gpus} GPUs`,
      `${s.requests} req`,
      `${s.concurrency.steps} steps`,
      `sim ${(s.duration_s / 3600).toFixed(1)} h`,
      `wall ${wallS.toFixed(1)} s`,
      `${(s.duration_s / wallS).toFixed(0)}x real time`,
      `${(s.requests / wallS / 1000).toFixed(1)} k req/s`,
      `${(s.concurrency.steps / wallS / 1e6).toFixed(2)} M steps/s`,
      `heap ${(process.memoryUsage().heapUsed / 1e9).toFixed(2)} GB`,
    ].join('  ') + '\n',
  );
}
