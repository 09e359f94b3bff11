import type { Argv, CommandModule } from 'yargs';

interface SweepArgs {
  config?: string;
  out?: string;
  workers?: number;
  shard?: string;
  quiet?: boolean;
}

interface MergeArgs {
  out: string;
  dirs: string[];
}

function fail(command: string, e: unknown): void {
  process.stderr.write(`\nstratos ${command}: ${(e as Error).message}\n`);
  process.exitCode = (e as { code?: string }).code === 'sweep' ? 2 : 1;
}

const mergeCommand: CommandModule<object, MergeArgs> = {
  command: 'merge <dirs..>',
  describe: 'Join the output directories of sweep shards into one result (results.csv over all points)',
  builder: (y: Argv) =>
    y
      .positional('dirs', { type: 'string', array: true, demandOption: true, describe: 'shard output directories (or one shared directory)' })
      .option('out', { type: 'string', demandOption: true, describe: 'merged output directory (may be one of the shard directories)' })
      .example('stratos sweep merge --out out/sweep out/shard-0 out/shard-1 out/shard-2', 'join three shards') as unknown as Argv<MergeArgs>,
  handler: async (args) => {
    const { mergeSweeps } = await import('../sweep/run.js');
    try {
      const { points } = mergeSweeps(args.dirs, args.out);
      process.stdout.write(`merged ${points} points into ${args.out}/results.csv\n`);
    } catch (e) {
      fail('sweep merge', e);
    }
  },
};

export const sweepCommand: CommandModule<object, SweepArgs> = {
  command: 'sweep',
  describe: 'Run a grid of simulations over any config key (resumable, shardable)',
  builder: (y: Argv) =>
    y
      .command(mergeCommand)
      .option('config', { type: 'string', describe: 'sweep config (YAML or JSON): base (a simulate config), grid and/or points' })
      .option('out', { type: 'string', describe: 'output directory: sweep.json, points/<id>.json, results.csv' })
      .option('workers', { type: 'number', default: 1, describe: 'worker threads running points in parallel' })
      .option('shard', { type: 'string', describe: 'run only shard I of N (points with index % N == I), e.g. 0/4' })
      .option('quiet', { type: 'boolean', describe: 'no progress bar on stderr' })
      .example('stratos sweep --config experiments/configs/sweep-example.yaml --out out/sweep --workers 2', 'run a whole sweep')
      .example('stratos sweep --config sweep.yaml --out out/shard-$JOB_COMPLETION_INDEX --shard $JOB_COMPLETION_INDEX/8', 'one of 8 independent jobs (e.g. a Kubernetes Indexed Job)')
      .example('stratos sweep merge --out out/sweep out/shard-*', 'join the shards')
      .epilogue(
        'Config: `base:` is a simulate config; `grid:` maps dotted keys (e.g. workload.rate, kv.pageSizeTokens, policy, ' +
          'lora.eviction, replicas) to lists of values; `points:` is a list of explicit override maps. Grid points come first, ' +
          'the last grid key varying fastest; then `points` in file order. Every point is validated before anything runs. ' +
          'Finished points are kept in DIR/points and skipped when the same command runs again (resume).',
      ) as unknown as Argv<SweepArgs>,
  handler: async (args) => {
    if (args.config === undefined || args.out === undefined) {
      process.stderr.write('stratos sweep: --config FILE and --out DIR are required (see stratos sweep --help)\n');
      process.exitCode = 2;
      return;
    }
    const { loadSweepSpec } = await import('../sweep/spec.js');
    const { parseShard } = await import('../sweep/shard.js');
    const { runSweep } = await import('../sweep/run.js');
    const { progressBar } = await import('../sweep/progress.js');
    let bar: ReturnType<typeof progressBar> | undefined;
    try {
      const spec = loadSweepSpec(args.config);
      const shard = args.shard !== undefined ? parseShard(args.shard) : undefined;
      if (!Number.isInteger(args.workers) || (args.workers ?? 1) < 1) throw Object.assign(new Error(`--workers = ${args.workers}: a positive integer`), { code: 'sweep' });
      const t0 = performance.now();
      const r = await runSweep(spec, {
        outDir: args.out,
        workers: args.workers ?? 1,
        ...(shard ? { shard } : {}),
        onStart: (total, skipped) => {
          if (!args.quiet) bar = progressBar(total, skipped);
        },
        onPoint: () => bar?.tick(),
      });
      bar?.done();
      const wallS = (performance.now() - t0) / 1000;
      process.stdout.write(`${r.total} points${shard ? ` (shard ${args.shard} of ${spec.expanded.length})` : ''}: ran ${r.ran}, skipped ${r.skipped} already done, ${wallS.toFixed(1)} s wall; wrote ${r.csvFile}\n`);
    } catch (e) {
      fail('sweep', e);
    }
  },
};
