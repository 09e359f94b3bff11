// `stratos validate`: the real engine and the simulator on the same workloads, and how far apart
// they are. With --config it runs the engine (GPU machine) and keeps its logs; --from-logs
// recomputes the comparison from logs anywhere (CI does, on the committed logs).
import { dirname, join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { GPU_NAMES } from '../../sim/catalog.js';
import { isUserError } from '../user-error.js';

interface ValidateArgs {
  config?: string;
  'from-logs'?: string;
  out?: string;
  traces?: string;
  only?: string;
  backend?: string;
  gpu?: string;
}

const BACKENDS = ['gpu', 'fake'] as const;

export const validateCommand: CommandModule<object, ValidateArgs> = {
  command: 'validate',
  describe: 'Run the real engine and the simulator on the same workloads; report their agreement',
  builder: (y: Argv) =>
    (y as Argv<ValidateArgs>)
      .option('config', { type: 'string', describe: 'validation config (YAML/JSON): capacity run, workloads, runs per workload' })
      .option('from-logs', { type: 'string', describe: 'recompute the comparison from a logs folder (no GPU needed)' })
      .option('out', { type: 'string', describe: 'output folder: logs/ (with --config), report.json, report.md and report.html' })
      .option('traces', { type: 'string', describe: 'folder that `traces:` paths in the config name', default: '../shared/traces' })
      .option('only', { type: 'string', describe: 'comma-separated workload names to run or compare' })
      .option('gpu', { type: 'string', choices: GPU_NAMES, describe: "with --config: the GPU the engine runs on, instead of the config's gpu (the simulator prices this GPU's profile)" })
      .option('backend', { type: 'string', describe: 'engine backend with --config: gpu (the real engine) | fake (step times from the cost model; a self-check whose errors must be 0)', default: 'gpu' })
      .example('stratos validate --config experiments/validate/h200.yaml --out out/validate', 'on the GPU machine: engine runs, logs, report')
      .example('stratos validate --config experiments/validate/h200.yaml --gpu h100 --out out/validate-h100', 'the same workloads on an H100 (its profile: calibration/profiles/h100.json)')
      .example('stratos validate --from-logs experiments/validate/results/h200/logs', 'anywhere: the report from committed logs')
      .epilogue(
        'Each workload is a `stratos simulate` config. The engine runs it `runs` times (run-to-run spread), keeping summary.json, ' +
          'requests.csv.gz and a plan log (every plan with its GPU time and wall time). The comparison replays the identical arrival ' +
          'sequence in the simulator with the calibrated profile and the engine\'s KV blocks, and checks the targets: throughput <= 3%, ' +
          'ITL mean <= 2% / p99 <= 5%, E2E mean <= 3% / p99 <= 6%, TTFT mean <= 8% / p99 <= 12% at 0.85x load, preemptions within 10%, ' +
          'KV blocks in use equal at every step (policy replay of the plan log). Every miss is listed with its cause: ' +
          'the TTFT, ITL and E2E mean errors split into decode GPU, prefill GPU and host prices of the engine\'s own steps and the schedule\'s rest (the error budget).',
      ),
  handler: async (args) => {
    const fail = (message: string): void => {
      process.stderr.write(`stratos validate: ${message}\n`);
      process.exitCode = 2;
    };
    if ((args.config === undefined) === (args['from-logs'] === undefined)) return fail('give exactly one of --config FILE (run the engine) or --from-logs DIR (recompute)');
    const only = args.only?.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    const progress = (line: string): void => void process.stderr.write(`[validate] ${line}\n`);
    try {
      const { compareLogs } = await import('../validate/compare.js');
      const { writeReport } = await import('../validate/report.js');
      let logsDir: string;
      let outDir: string;
      if (args.config !== undefined) {
        if (args.out === undefined) return fail('--config needs --out DIR (the logs and the report go there)');
        const backend = args.backend ?? 'gpu';
        if (!(BACKENDS as readonly string[]).includes(backend)) return fail(`--backend = ${backend}: allowed: ${BACKENDS.join(', ')}`);
        const { readConfigFile } = await import('../config-file.js');
        const { parseValidateConfig } = await import('../validate/spec.js');
        const { runEngineWorkloads } = await import('../validate/engine-runs.js');
        const parsed = parseValidateConfig(readConfigFile(args.config), args.config);
        const config = args.gpu !== undefined ? { ...parsed, gpu: args.gpu } : parsed;
        outDir = args.out;
        await runEngineWorkloads({ config, outDir, tracesDir: args.traces ?? '../shared/traces', backend: backend as 'gpu' | 'fake', ...(only ? { only } : {}), progress });
        logsDir = join(outDir, 'logs');
      } else {
        logsDir = args['from-logs']!;
        outDir = args.out ?? dirname(resolve(logsDir));
      }
      const comparison = await compareLogs(logsDir, progress, only);
      writeReport(outDir, comparison, `stratos validate --from-logs ${logsDir}`);
      process.stdout.write(`wrote ${join(outDir, 'report.md')}, report.json and report.html (${comparison.workloads.length} workloads)\n`);
    } catch (e) {
      if (isUserError(e)) return fail(e.message);
      throw e;
    }
  },
};
