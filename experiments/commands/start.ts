import type { CommandModule } from 'yargs';

interface StartArgs {
  slice?: number;
  hours?: number;
  seed?: number;
  serial?: boolean;
  popularity?: string;
  autoscale?: boolean;
  'cost-model'?: string;
}

/** `npm start`: the case study's fleet-day, baseline vs optimized, as a before/after table. */
export const startCommand: CommandModule<object, StartArgs> = {
  command: 'start',
  describe: "The main job (what `npm start` runs): the case study's fleet before and after, simulated",
  builder: (y) =>
    y
      .option('slice', { type: 'number', describe: 'simulate 1/N of the fleet and its traffic (env STRATOS_SLICE; default 16; 1 = all 256 GPUs)' })
      .option('hours', { type: 'number', describe: 'simulated hours from midnight (default 24)' })
      .option('seed', { type: 'number' })
      .option('popularity', { type: 'string', describe: 'tenant popularity in each tier: zipf (default) | servegen (client shares of ../shared/traces/alibaba-servegen)' })
      .option('autoscale', { type: 'boolean', describe: "let the autoscaler resize the optimized stack's pools (default: the fleet stays at 256 GPUs)" })
      .option('cost-model', { type: 'string', describe: 'roofline (default: analytic, uncalibrated, fits the 2-minute budget) | profile (the A100 calibration profile; about 6 minutes on 2 cores)' })
      .option('serial', { type: 'boolean', describe: 'run the two stacks one after the other instead of on two worker threads' }),
  handler: async (args) => {
    const { runStart, DEFAULT_START } = await import('../start.js');
    const slice = args.slice ?? (process.env.STRATOS_SLICE !== undefined ? Number(process.env.STRATOS_SLICE) : DEFAULT_START.slice);
    const hours = args.hours ?? DEFAULT_START.hours;
    for (const [key, v] of [['slice', slice], ['hours', hours]] as const) {
      if (!(Number.isInteger(v) && v >= 1) && !(key === 'hours' && v > 0)) {
        process.stderr.write(`stratos start: --${key} = ${v}: must be ${key === 'slice' ? 'a positive integer' : 'a positive number'}\n`);
        process.exitCode = 2;
        return;
      }
    }
    const costModel = args['cost-model'] ?? DEFAULT_START.costModel;
    if (costModel !== 'profile' && costModel !== 'roofline') {
      process.stderr.write(`stratos start: --cost-model = ${costModel}: allowed: roofline, profile\n`);
      process.exitCode = 2;
      return;
    }
    let servegenFile: string | undefined;
    if (args.popularity !== undefined && args.popularity !== 'zipf') {
      const { existsSync } = await import('node:fs');
      const { fileURLToPath } = await import('node:url');
      const root = fileURLToPath(new URL('../..', import.meta.url));
      const candidates = [`${root}../shared/traces`, '/work/shared/traces'].map((d) => `${d}/alibaba-servegen/servegen_client_traces.tar.gz`);
      servegenFile = candidates.find((f) => existsSync(f));
      if (args.popularity !== 'servegen' || servegenFile === undefined) {
        process.stderr.write(`stratos start: --popularity = ${args.popularity}: allowed: zipf, servegen (servegen needs ${candidates[0]})\n`);
        process.exitCode = 2;
        return;
      }
    }
    await runStart({ slice, hours, seed: args.seed ?? DEFAULT_START.seed, parallel: args.serial !== true, costModel, autoscale: args.autoscale === true, ...(servegenFile !== undefined ? { servegenFile } : {}) });
  },
};
