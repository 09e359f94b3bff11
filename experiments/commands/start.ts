import type { CommandModule } from 'yargs';
import type { StartOptions } from '../start.js';

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
      .option('cost-model', { type: 'string', describe: 'profile (default: the A100 calibration profile, derived from H200 measurements) | roofline (analytic, uncalibrated)' })
      .option('serial', { type: 'boolean', describe: 'run the two stacks one after the other instead of on two worker threads' }),
  handler: async (args) => {
    const { runStart, DEFAULT_START } = await import('../start.js');
    let options: StartOptions;
    try {
      options = await startOptions(args, DEFAULT_START);
    } catch (e) {
      process.stderr.write(`stratos start: ${(e as Error).message}\n`);
      process.exitCode = 2;
      return;
    }
    await runStart(options);
  },
};

/** The run's options from the flags (and STRATOS_SLICE); throws naming the flag, the value and what is allowed. */
async function startOptions(args: StartArgs, defaults: StartOptions): Promise<StartOptions> {
  const slice = args.slice ?? (process.env.STRATOS_SLICE !== undefined ? Number(process.env.STRATOS_SLICE) : defaults.slice);
  if (!(Number.isInteger(slice) && slice >= 1)) throw new Error(`--slice = ${slice}: must be a positive integer`);
  const hours = args.hours ?? defaults.hours;
  if (!(hours > 0)) throw new Error(`--hours = ${hours}: must be a positive number`);
  const costModel = args['cost-model'] ?? defaults.costModel;
  if (costModel !== 'profile' && costModel !== 'roofline') throw new Error(`--cost-model = ${costModel}: allowed: roofline, profile`);
  let servegenFile: string | undefined;
  if (args.popularity !== undefined && args.popularity !== 'zipf') {
    const { existsSync } = await import('node:fs');
    const { fileURLToPath } = await import('node:url');
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const candidates = [`${root}../shared/traces`, '/work/shared/traces'].map((d) => `${d}/alibaba-servegen/servegen_client_traces.tar.gz`);
    servegenFile = candidates.find((f) => existsSync(f));
    if (args.popularity !== 'servegen' || servegenFile === undefined) {
      throw new Error(`--popularity = ${args.popularity}: allowed: zipf, servegen (servegen needs ${candidates[0]})`);
    }
  }
  return { slice, hours, seed: args.seed ?? defaults.seed, parallel: args.serial !== true, costModel, autoscale: args.autoscale === true, ...(servegenFile !== undefined ? { servegenFile } : {}) };
}
