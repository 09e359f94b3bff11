import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { basename, dirname, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { GPU_NAMES, gpuOfDeviceName, type GpuName } from '../../sim/catalog.js';
import { fitProfile } from '../../sim/cost/profile-fit.js';
import { deriveProfile } from '../../sim/cost/profile-derive.js';
import { curveCharts, errorTable } from '../../sim/cost/profile-report.js';
import { loadProfile } from '../../sim/cost/profile.js';
import { formatSamplesCsv, mergeSamples, parseSamplesCsv, SamplesError } from '../../sim/cost/samples.js';

// `stratos calibrate run | fit | derive | report | power | merge`: microbenchmark the kernels, fit
// a profile, derive one for a GPU we cannot measure, report a profile's errors and curves, fit the
// GPU's power management from the power microbenchmark, and replace families of a run by a later one's.
// Every handler is async, so a throw becomes a rejection that the CLI's fail handler prints as the
// user's error (a throw from a synchronous handler of a nested command escaped it, with a stack).

class CalibrateError extends Error {
  readonly code = 'calibrate' as const;
}

interface RunArgs {
  out: string;
  models: string;
  grid: string;
  families?: string;
  'budget-s': number;
}

const runCommand: CommandModule<object, RunArgs> = {
  command: 'run',
  describe: 'Run the kernel microbenchmarks on the GPU and write raw samples (CSV)',
  builder: (y: Argv) =>
    y
      .option('out', { type: 'string', demandOption: true, describe: 'samples CSV to write' })
      .option('models', { type: 'string', default: 'llama2-7b,llama2-13b,llama2-70b', describe: 'models whose shapes to cover (70B as TP 1/2/4/8 shards)' })
      .option('grid', { type: 'string', choices: ['full', 'quick'], default: 'full', describe: 'full: the simulator\'s range; quick: a smoke test' })
      .option('families', { type: 'string', describe: 'only these op families (comma-separated)' })
      .option('budget-s', { type: 'number', default: 420, describe: 'stop starting new cases after this many seconds' })
      .example('stratos calibrate run --out calibration/runs/today/samples.csv', 'the full grids on this machine\'s GPU')
      .epilogue('Needs the native addon built with CUDA and a GPU. On a machine without npm, bundle with `node calibration/bundle.mjs` and run `bash calibration/run.sh` (same code).') as unknown as Argv<RunArgs>,
  handler: async (args) => {
    const { runCalibration, parseFamilies, parseModels } = await import('../../calibration/runner.js');
    const families = parseFamilies(args.families);
    const r = runCalibration({
      out: args.out,
      models: parseModels(args.models),
      grid: args.grid as 'full' | 'quick',
      ...(families ? { families } : {}),
      budgetS: args['budget-s'],
      root: process.cwd(),
      command: `stratos calibrate run ${process.argv.slice(4).join(' ')}`,
    });
    if (r.samples === 0) process.exitCode = 1;
  },
};

interface FitArgs {
  samples: string;
  out: string;
  gpu?: string;
  name?: string;
}

/** A samples CSV (.csv or .csv.gz), parsed; errors name the file. */
function readSamples(path: string): ReturnType<typeof parseSamplesCsv> {
  let text: string;
  try {
    const raw = readFileSync(path);
    text = (path.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
  } catch (err) {
    throw new CalibrateError(`cannot read samples ${path}: ${(err as Error).message}`);
  }
  return parseSamplesCsv(text, path);
}

/** Indented JSON with arrays of numbers kept on one line (the efficiency grids). */
function profileJson(value: unknown): string {
  return JSON.stringify(value, null, 1).replace(/\[[\s\d.eE+,null-]*\]/g, (m) => m.replace(/\s+/g, '')) + '\n';
}

function gpuFromMeta(meta: Record<string, unknown>): GpuName {
  const name = String((meta.gpu as { name?: unknown } | undefined)?.name ?? '');
  const gpu = gpuOfDeviceName(name);
  if (gpu !== null) return gpu;
  throw new CalibrateError(`cannot tell the GPU from the samples ("${name}"); pass --gpu (allowed: ${GPU_NAMES.join(', ')})`);
}

const fitCommand: CommandModule<object, FitArgs> = {
  command: 'fit <samples>',
  describe: 'Fit a cost-model profile (JSON) from raw samples; writes the held-back samples beside it',
  builder: (y: Argv) =>
    y
      .positional('samples', { type: 'string', demandOption: true, describe: 'samples CSV from `calibrate run` (.csv or .csv.gz)' })
      .option('out', { type: 'string', demandOption: true, describe: 'profile JSON to write; PROFILE.holdout.csv is written beside it' })
      .option('gpu', { type: 'string', choices: GPU_NAMES, describe: 'the GPU the samples were measured on (default: from the samples)' })
      .option('name', { type: 'string', describe: 'profile name (default <gpu>-<date>)' })
      .example('stratos calibrate fit calibration/runs/2026-11-22/samples.csv --out calibration/profiles/h200.json', '') as unknown as Argv<FitArgs>,
  handler: async (args) => {
    const { meta, samples } = readSamples(args.samples);
    const gpu = (args.gpu as GpuName | undefined) ?? gpuFromMeta(meta);
    const { profile, holdout } = fitProfile({ samples, meta: { ...meta, samplesFile: basename(args.samples) }, gpu, ...(args.name ? { name: args.name } : {}) });
    mkdirSync(dirname(args.out), { recursive: true });
    writeFileSync(args.out, profileJson(profile));
    const holdoutPath = args.out.replace(/\.json$/, '') + '.holdout.csv';
    writeFileSync(holdoutPath, formatSamplesCsv({ profile: profile.name, note: 'off-grid samples held back from the fit', run: meta.date }, holdout));
    process.stdout.write(`wrote ${args.out} (${profile.tables.length} tables from ${samples.length - holdout.length} samples) and ${holdoutPath} (${holdout.length} samples)\n\n${errorTable(profile)}\n`);
  },
};

interface DeriveArgs {
  profile: string;
  gpu: string;
  out: string;
}

const deriveCommand: CommandModule<object, DeriveArgs> = {
  command: 'derive <profile>',
  describe: 'Derive a profile for another GPU: efficiency curves carried over, peaks from its spec sheet',
  builder: (y: Argv) =>
    y
      .positional('profile', { type: 'string', demandOption: true, describe: 'a measured profile' })
      .option('gpu', { type: 'string', choices: GPU_NAMES, demandOption: true, describe: 'the target GPU' })
      .option('out', { type: 'string', demandOption: true, describe: 'profile JSON to write' })
      .example('stratos calibrate derive calibration/profiles/h200.json --gpu a100-80gb --out calibration/profiles/a100-80gb.json', '') as unknown as Argv<DeriveArgs>,
  handler: async (args) => {
    const derived = deriveProfile(loadProfile(args.profile), args.gpu as GpuName);
    mkdirSync(dirname(args.out), { recursive: true });
    writeFileSync(args.out, profileJson(derived));
    process.stdout.write(`wrote ${args.out} (${derived.name}, derived)\n`);
  },
};

interface PowerArgs {
  bench: string;
  profile: string;
  out?: string;
}

const powerCommand: CommandModule<object, PowerArgs> = {
  command: 'power <bench>',
  describe: 'Fit the GPU\'s power management (how much faster compute-bound work runs below the power cap) from the power microbenchmark into a profile',
  builder: (y: Argv) =>
    y
      .positional('bench', { type: 'string', demandOption: true, describe: 'power-bench.json from calibration/power-run.sh on the GPU machine' })
      .option('profile', { type: 'string', demandOption: true, describe: 'the measured profile of the same GPU; its peaks give the compute share' })
      .option('out', { type: 'string', describe: 'profile JSON to write (default: the profile, updated in place)' })
      .example('stratos calibrate power calibration/runs/2026-12-07-power/power-bench.json --profile calibration/profiles/h200.json', 'adds or replaces the profile\'s power section') as unknown as Argv<PowerArgs>,
  handler: async (args) => {
    const { fitPower } = await import('../../sim/cost/power-fit.js');
    const profile = loadProfile(args.profile);
    if (profile.derived) throw new CalibrateError(`${args.profile} is derived: power management is measured per GPU, fit it into a measured profile`);
    let bench: unknown;
    try {
      bench = JSON.parse(readFileSync(args.bench, 'utf8'));
    } catch (err) {
      throw new CalibrateError(`cannot read ${args.bench}: ${(err as Error).message}`);
    }
    const b = bench as { device?: unknown };
    if (gpuOfDeviceName(String(b.device)) !== profile.gpu) throw new CalibrateError(`${args.bench} was measured on ${String(b.device)}; the profile is for ${profile.gpu}`);
    const fit = fitPower(bench as Parameters<typeof fitPower>[0], profile.peaks.bf16FlopsPerS / profile.peaks.memoryBytesPerS, args.bench);
    const out = args.out ?? args.profile;
    writeFileSync(out, profileJson({ ...profile, power: fit.profile }));
    const rows = fit.phases.map((p) => `  ${p.name.padEnd(10)} measured ${p.measured.toFixed(4)}  model ${p.predicted.toFixed(4)}`);
    process.stdout.write(`power: tau ${fit.profile.tauUs / 1000} ms, speed ${fit.profile.speed.join(' ')} at heat ${fit.profile.heat.join(' ')}; rms error ${(fit.rmsError * 100).toFixed(2)}%\ncompute time over the hot time, second half of each phase:\n${rows.join('\n')}\nwrote ${out}\n`);
  },
};

interface MergeArgs {
  base: string;
  patch: string;
  out: string;
}

const mergeCommand: CommandModule<object, MergeArgs> = {
  command: 'merge <base> <patch>',
  describe: 'Replace whole op families of a samples file by a later run\'s (e.g. GEMMs re-measured), for `calibrate fit`',
  builder: (y: Argv) =>
    y
      .positional('base', { type: 'string', demandOption: true, describe: 'samples of the full run (.csv or .csv.gz)' })
      .positional('patch', { type: 'string', demandOption: true, describe: 'samples of a later run of some families (`calibrate run --families ...`)' })
      .option('out', { type: 'string', demandOption: true, describe: 'merged samples CSV to write (.gz compresses)' })
      .example('stratos calibrate merge calibration/runs/2026-11-22-lora/samples.csv.gz calibration/runs/2026-12-07-hot/hot-samples.csv.gz --out calibration/runs/2026-12-07-hot/samples.csv.gz', 'the gemm and prefill rows from the later run, the rest from the base')
      .epilogue('Every family the patch holds is taken from the patch alone; the provenance is the base\'s, with the patch\'s run under `replacedBy`. The two runs must come from the same GPU.') as unknown as Argv<MergeArgs>,
  handler: async (args) => {
    const base = readSamples(args.base);
    const patch = readSamples(args.patch);
    const gpuName = (m: Record<string, unknown>) => String((m.gpu as { name?: unknown } | undefined)?.name ?? '');
    if (gpuName(base.meta) !== gpuName(patch.meta)) throw new CalibrateError(`${args.patch} was measured on "${gpuName(patch.meta)}", ${args.base} on "${gpuName(base.meta)}": merge runs of one GPU`);
    const merged = mergeSamples(base, patch);
    const text = formatSamplesCsv(merged.meta, merged.samples);
    mkdirSync(dirname(args.out), { recursive: true });
    writeFileSync(args.out, args.out.endsWith('.gz') ? gzipSync(text, { level: 9 }) : text);
    const replaced = base.samples.length - (merged.samples.length - patch.samples.length);
    process.stdout.write(`wrote ${args.out}: ${merged.samples.length} samples; families ${merged.families.join(', ')} from ${args.patch} (${replaced} rows replaced by ${patch.samples.length})\n`);
  },
};

interface ReportArgs {
  profile: string;
  out?: string;
}

const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report <profile>',
  describe: 'Print a profile\'s fit errors and draw its efficiency curves (HTML with SVG)',
  builder: (y: Argv) =>
    y
      .positional('profile', { type: 'string', demandOption: true, describe: 'a profile JSON' })
      .option('out', { type: 'string', describe: 'HTML file to write (default: PROFILE.report.html)' })
      .example('stratos calibrate report calibration/profiles/h200.json', 'prints the table, writes calibration/profiles/h200.report.html') as unknown as Argv<ReportArgs>,
  handler: async (args) => {
    const profile = loadProfile(args.profile);
    const { renderReportHtml } = await import('../../calibration/report-svg.js');
    const table = errorTable(profile);
    const out = args.out ?? join(dirname(args.profile), basename(args.profile).replace(/\.json$/, '') + '.report.html');
    const prov = profile.provenance as Record<string, unknown>;
    const notes = [
      `peaks: ${(profile.peaks.memoryBytesPerS / 1e12).toFixed(3)} TB/s HBM, ${(profile.peaks.bf16FlopsPerS / 1e12).toFixed(0)} TFLOP/s bf16, ${(profile.peaks.pcieBytesPerS / 1e9).toFixed(0)} GB/s PCIe`,
      profile.derived ? `derived: ${String(prov.method)}` : `measured ${String(prov.date)} on ${String((prov.gpu as { name?: string } | undefined)?.name)}; kernel sources sha256 ${String(prov.kernelSourcesSha256)}`,
      `host overhead: ${profile.hostOverheadUs === null ? 'not measured (engine loop not built yet)' : `${profile.hostOverheadUs} us`}; all-reduce: ${profile.allReduce ? 'measured' : 'not measured (one GPU)'}`,
    ];
    writeFileSync(out, renderReportHtml({ title: `Calibration profile ${profile.name}`, subtitle: profile.fit.method, errorTable: table, notes, charts: curveCharts(profile) }));
    process.stdout.write(`${profile.name}${profile.derived ? ' (derived)' : ''}\n${notes.map((n) => `  ${n}\n`).join('')}\n${table}\n\nwrote ${out}\n`);
  },
};

export const calibrateCommand: CommandModule = {
  command: 'calibrate <action>',
  describe: 'Microbenchmark the kernels on a GPU and fit the cost model (run | fit | derive | report | power | merge)',
  builder: (y) =>
    y
      .command(runCommand as unknown as CommandModule)
      .command(fitCommand as unknown as CommandModule)
      .command(deriveCommand as unknown as CommandModule)
      .command(reportCommand as unknown as CommandModule)
      .command(powerCommand as unknown as CommandModule)
      .command(mergeCommand as unknown as CommandModule)
      .demandCommand(1, 'name an action: run, fit, derive, report, power or merge'),
  handler: () => {},
};

export { CalibrateError, SamplesError };
