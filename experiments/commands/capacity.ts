import type { Argv, CommandModule } from 'yargs';
import { readConfigObject } from '../config-file.js';

interface CapacityArgs {
  config?: string;
  target: string;
  seeds: number;
  'max-replicas': number;
  'rate-low'?: number;
  'rate-high'?: number;
  tolerance: number;
  json?: boolean;
}

export const capacityCommand: CommandModule<object, CapacityArgs> = {
  command: 'capacity',
  describe: 'Find the fewest GPUs (or highest rate) that meet the SLA',
  builder: (y: Argv) =>
    y
      .option('config', { type: 'string', describe: 'simulate config (YAML or JSON) with workload and sla' })
      .option('target', { type: 'string', default: 'replicas', choices: ['replicas', 'rate'], describe: 'bisect over replicas (fewest GPUs) or workload.rate (highest rate)' })
      .option('seeds', { type: 'number', default: 3, describe: 'seeds per candidate (config seed, seed+1, ...); all must meet the SLA' })
      .option('max-replicas', { type: 'number', default: 256 })
      .option('rate-low', { type: 'number', describe: 'lowest rate tried (default 0.1)' })
      .option('rate-high', { type: 'number', describe: 'first upper rate (default 2 x config rate; doubled while it passes)' })
      .option('tolerance', { type: 'number', default: 0.02, describe: 'relative width of the final rate bracket' })
      .option('json', { type: 'boolean', describe: 'print the result as JSON' })
      .example('stratos capacity --config experiments/configs/capacity-example.yaml', 'fewest replicas (GPUs) for the config workload')
      .example('stratos capacity --config experiments/configs/capacity-example.yaml --target rate', 'highest arrival rate the config fleet sustains')
      .epilogue('A candidate meets the SLA when p99 TTFT and p99 ITL are within sla.ttftMsP99 / sla.itlMsP99 for every seed. The margin printed is the worst-seed headroom at the answer and the failing neighbour.') as unknown as Argv<CapacityArgs>,
  handler: async (args) => {
    const { findCapacity } = await import('../capacity/search.js');
    let raw: Record<string, unknown> = {};
    try {
      if (args.config !== undefined) raw = readConfigObject(args.config);
      if (!Number.isInteger(args.seeds) || args.seeds < 1) throw new Error(`--seeds = ${args.seeds}: a positive integer`);
      const seed0 = typeof raw.seed === 'number' ? raw.seed : 1;
      const target = args.target as 'replicas' | 'rate';
      const r = findCapacity(raw, {
        target,
        seeds: Array.from({ length: args.seeds }, (_, i) => seed0 + i),
        maxReplicas: args['max-replicas'],
        rateTolerance: args.tolerance,
        ...(args['rate-low'] !== undefined ? { rateLow: args['rate-low'] } : {}),
        ...(args['rate-high'] !== undefined ? { rateHigh: args['rate-high'] } : {}),
        onEvaluation: (e) => process.stderr.write(`  ${target} = ${e.value}: ${e.pass ? 'meets' : 'misses'} SLA (worst p99 TTFT ${e.worstTtftMsP99} ms, ITL ${e.worstItlMsP99} ms)\n`),
      });
      if (args.json) {
        process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        return;
      }
      if (r.answer === null) {
        process.stdout.write(`no ${target === 'replicas' ? `replica count up to ${args['max-replicas']}` : 'rate from the lowest tried'} meets the SLA\n`);
        process.exitCode = 1;
        return;
      }
      const what = target === 'replicas' ? `fewest replicas: ${r.answer} (${r.gpus} GPUs)` : `highest rate: ${r.answer} req/s on ${r.gpus} GPUs`;
      const pct = (h: number | null): string => (h === null ? 'n/a' : `${(h * 100).toFixed(1)}%`);
      process.stdout.write(`${what}, over ${r.seeds.length} seeds\n`);
      process.stdout.write(`margin at the answer: p99 TTFT headroom ${pct(r.ttftHeadroom)}, p99 ITL headroom ${pct(r.itlHeadroom)} (worst seed)\n`);
      if (r.failingNeighbour) process.stdout.write(`fails at ${target} = ${r.failingNeighbour.value} (worst p99 TTFT ${r.failingNeighbour.worstTtftMsP99} ms, ITL ${r.failingNeighbour.worstItlMsP99} ms)\n`);
      process.stdout.write(`${r.evaluations.length} candidates, ${r.evaluations.length * r.seeds.length} simulations\n`);
    } catch (e) {
      process.stderr.write(`stratos capacity: ${(e as Error).message}\n`);
      process.exitCode = 2;
    }
  },
};
