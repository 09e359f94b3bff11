import type { Argv, CommandModule } from 'yargs';
import { readConfigObject } from '../config-file.js';
import { isUserError } from '../user-error.js';
import { GPU_NAMES } from '../../sim/catalog.js';

export interface SimulateArgs {
  config?: string;
  model?: string;
  gpu?: string;
  tp?: number;
  replicas?: number;
  policy?: string;
  'page-size'?: number;
  allocator?: string;
  'max-num-seqs'?: number;
  'max-num-batched-tokens'?: number;
  rate?: number;
  duration?: number;
  arrival?: string;
  cv?: number;
  'input-tokens'?: string;
  'output-tokens'?: string;
  trace?: string;
  'trace-format'?: string;
  'rate-scale'?: number;
  'trace-start'?: number;
  'trace-end'?: number;
  sampling?: string;
  'cost-model'?: string;
  profile?: string;
  'weight-dtype'?: string;
  'kv-dtype'?: string;
  mode?: string;
  seed?: number;
  out?: string;
  steps?: boolean;
  quiet?: boolean;
}

/** Sets `obj[path]` only when the flag was given, so a flag overrides the file and nothing else does. */
function setIf(obj: Record<string, unknown>, path: string, value: unknown): void {
  if (value === undefined) return;
  const keys = path.split('.');
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]] = value;
}

/** Flags that set one config key each, in the order they are applied. */
const FLAG_KEYS: readonly (readonly [keyof SimulateArgs, string])[] = [
  ['model', 'model'],
  ['gpu', 'gpu'],
  ['tp', 'tp'],
  ['replicas', 'replicas'],
  ['policy', 'policy'],
  ['mode', 'mode'],
  ['seed', 'seed'],
  ['weight-dtype', 'weightDtype'],
  ['kv-dtype', 'kvDtype'],
  ['page-size', 'kv.pageSizeTokens'],
  ['allocator', 'kv.allocator'],
  ['max-num-seqs', 'scheduler.maxNumSeqs'],
  ['max-num-batched-tokens', 'scheduler.maxNumBatchedTokens'],
  ['sampling', 'cost.sampling'],
  ['cost-model', 'cost.model'],
  ['profile', 'cost.profile'],
  ['rate', 'workload.rate'],
  ['duration', 'workload.durationS'],
  ['arrival', 'workload.arrival'],
  ['cv', 'workload.cv'],
  ['input-tokens', 'workload.inputTokens'],
  ['output-tokens', 'workload.outputTokens'],
];

/** Trace slicing flags, applied after --trace / --trace-format. */
const TRACE_FLAG_KEYS: readonly (readonly [keyof SimulateArgs, string])[] = [
  ['rate-scale', 'trace.rateScale'],
  ['trace-start', 'trace.startS'],
  ['trace-end', 'trace.endS'],
];

/** The raw config that the file and the flags describe (flags override the file); `engine bench` reuses it. */
export function rawSimConfig(args: SimulateArgs): Record<string, unknown> {
  const raw: Record<string, unknown> = args.config ? readConfigObject(args.config) : {};
  for (const [flag, key] of FLAG_KEYS) setIf(raw, key, args[flag]);
  if (args.trace !== undefined || args['trace-format'] !== undefined) {
    setIf(raw, 'trace.file', args.trace);
    setIf(raw, 'trace.format', args['trace-format'] ?? 'azure');
  }
  for (const [flag, key] of TRACE_FLAG_KEYS) setIf(raw, key, args[flag]);
  return raw;
}

function fmt(x: unknown): string {
  return typeof x === 'number' ? (Number.isInteger(x) ? String(x) : x.toFixed(1)) : String(x ?? '—');
}

/** The terminal table: the headline numbers of summary.json. */
export function summaryTable(s: Record<string, any>): string {
  const rows: [string, string][] = [
    ['cost model', `${s.cost_model.name} (${s.cost_model.calibration})`],
    ['model / gpu / tp / replicas', `${s.model} / ${s.gpu} / ${s.tp} / ${s.replicas}`],
    ['policy', s.policy],
    ['requests (completed / rejected)', `${s.requests} (${s.completed} / ${s.rejected})`],
    ['duration (s)', fmt(s.duration_s)],
    ['throughput (output tok/s)', fmt(s.throughput_output_tokens_per_s)],
    ['throughput (total tok/s)', fmt(s.throughput_total_tokens_per_s)],
    ['throughput (req/s)', fmt(s.throughput_requests_per_s)],
  ];
  for (const [name, key] of [['TTFT', 'ttft_ms'], ['ITL', 'itl_ms'], ['TPOT', 'tpot_ms'], ['E2E', 'e2e_ms'], ['queue', 'queue_ms']] as const) {
    const d = s[key];
    rows.push([`${name} ms mean / p50 / p90 / p99`, `${fmt(d.mean)} / ${fmt(d.p50)} / ${fmt(d.p90)} / ${fmt(d.p99)}`]);
  }
  rows.push(['preemptions', fmt(s.preemptions)]);
  // An HTTP bench sees no KV cache (kv is null).
  if (typeof s.kv?.utilization_mean === 'number') rows.push(['KV utilization mean / peak', `${fmt(s.kv.utilization_mean * 100)}% / ${fmt(s.kv.utilization_peak * 100)}%`]);
  if (typeof s.kv?.waste_mean === 'number') rows.push(['KV waste (reserved, unused)', `${fmt(s.kv.waste_mean * 100)}%`]);
  rows.push([
    `SLA (p99 TTFT ${s.sla.thresholds.ttft_ms_p99} ms, p99 ITL ${s.sla.thresholds.itl_ms_p99} ms)`,
    `${s.sla.met ? 'met' : 'missed'}; attainment ${fmt(s.sla.attainment * 100)}%`,
  ]);
  rows.push(["Little's law (L vs λW)", `${fmt(s.littles_law.time_avg_in_system)} vs ${fmt(s.littles_law.lambda_w)}`]);
  if (s.pools !== undefined) {
    for (const [name, p] of Object.entries<any>(s.pools)) {
      rows.push([
        `pool ${name} (${p.model}, TP ${p.tp}, ${p.replicas_initial}+${p.spares})`,
        `${p.completed}/${p.requests} completed; TTFT p99 ${fmt(p.ttft_ms.p99)} ms; ITL p99 ${fmt(p.itl_ms.p99)} ms; KV ${fmt(p.kv_utilization_mean * 100)}%; $${fmt(p.gpu_cost_usd_per_m_output_tokens)}/M out`,
      ]);
    }
    rows.push(['router refusals / failures / retries', `${JSON.stringify(s.router.refusals)} / ${s.faults.failures} / ${s.faults.retries}`]);
    rows.push(['GPU $/month, revenue $/month, margin', `${fmt(s.cost.monthly.gpu_cost_usd)} / ${fmt(s.cost.monthly.revenue_usd)} / ${fmt(s.cost.gross_margin * 100)}%`]);
  }
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

export const simulateCommand: CommandModule<object, SimulateArgs> = {
  command: 'simulate',
  describe: 'Simulate replicas serving a workload; write summary.json and requests.csv',
  builder: (y: Argv) =>
    y
      .option('config', { type: 'string', describe: 'JSON or YAML config (flags override it)' })
      .option('model', { type: 'string', describe: 'llama2-7b | llama2-13b | llama2-70b' })
      .option('gpu', { type: 'string', describe: GPU_NAMES.join(' | ') })
      .option('tp', { type: 'number', describe: 'tensor-parallel degree per replica' })
      .option('replicas', { type: 'number' })
      .option('policy', { type: 'string', describe: 'static | continuous | chunked' })
      .option('page-size', { type: 'number', describe: 'KV page size in tokens' })
      .option('allocator', { type: 'string', describe: 'paged | contiguous' })
      .option('max-num-seqs', { type: 'number', describe: 'batch size limit' })
      .option('max-num-batched-tokens', { type: 'number' })
      .option('rate', { type: 'number', describe: 'synthetic arrivals per second' })
      .option('duration', { type: 'number', describe: 'synthetic workload length in seconds' })
      .option('arrival', { type: 'string', describe: 'poisson | gamma' })
      .option('cv', { type: 'number', describe: 'gamma inter-arrival coefficient of variation' })
      .option('input-tokens', { type: 'string', describe: 'constant:N | uniform:MIN:MAX | normal:MEAN:SD[:MAX] | lognormal:MEDIAN:SIGMA[:MAX]' })
      .option('output-tokens', { type: 'string', describe: 'same laws as --input-tokens' })
      .option('trace', { type: 'string', describe: 'replay a trace file' })
      .option('trace-format', { type: 'string', describe: 'azure | mooncake' })
      .option('rate-scale', { type: 'number', describe: 'trace arrival-rate multiplier (1 = native speed)' })
      .option('trace-start', { type: 'number', describe: 'slice: first trace second' })
      .option('trace-end', { type: 'number', describe: 'slice: end trace second' })
      .option('sampling', { type: 'string', describe: 'gpu | cpu (host sampling cost per token)' })
      .option('cost-model', { type: 'string', describe: 'profile (the GPU\'s calibration profile, default) | roofline (analytic, uncalibrated)' })
      .option('profile', { type: 'string', describe: 'a calibration profile JSON instead of calibration/profiles/<gpu>.json' })
      .option('weight-dtype', { type: 'string', describe: 'bf16 | fp16 | fp8 | int8 | int4' })
      .option('kv-dtype', { type: 'string', describe: 'bf16 | fp16 | fp8' })
      .option('mode', { type: 'string', describe: 'lazy (fast) | step (every step through the event queue; same results)' })
      .option('seed', { type: 'number' })
      .option('out', { type: 'string', describe: 'output directory for summary.json and requests.csv' })
      .option('steps', { type: 'boolean', describe: 'also write steps.csv (one row per step)' })
      .option('quiet', { type: 'boolean', describe: 'no progress on stderr' })
      .example('stratos simulate --model llama2-13b --gpu a100-80gb --policy continuous --rate 10 --output-tokens uniform:100:500 --out out/c', '')
      .example('stratos simulate --trace ../shared/traces/azure-llm-2023/AzureLLMInferenceTrace_conv.csv --trace-format azure --out out/azure', ''),
  handler: async (args) => {
    const { parseSimConfig } = await import('../../sim/config.js');
    const { runConfig } = await import('../../sim/run.js');
    const raw = rawSimConfig(args);
    let config;
    try {
      config = parseSimConfig(raw, args.config ?? 'flags');
    } catch (e) {
      process.stderr.write(`stratos simulate: ${(e as Error).message}\n`);
      process.exitCode = 2;
      return;
    }
    const t0 = performance.now();
    const progress = args.quiet
      ? undefined
      : (simUs: number, n: number): void => {
          const wallS = (performance.now() - t0) / 1000;
          process.stderr.write(`\rsimulated ${(simUs / 1e6).toFixed(0)} s, ${n} arrivals, ${wallS.toFixed(1)} s wall`);
        };
    let summary: Record<string, unknown>;
    try {
      ({ summary } = runConfig(config, {
        ...(args.out !== undefined ? { outDir: args.out } : {}),
        writeSteps: args.steps === true,
        hooks: progress ? { onProgress: progress, progressEvery: 2000 } : {},
      }));
    } catch (e) {
      // Input problems (a malformed trace row, a model that does not fit the GPU) carry a `code`
      // and a message naming the file:line or key; anything else is a bug and keeps its stack.
      if (isUserError(e)) {
        if (progress) process.stderr.write('\n');
        process.stderr.write(`stratos simulate: ${e.message}\n`);
        process.exitCode = 2;
        return;
      }
      throw e;
    }
    if (progress) process.stderr.write(`\rdone in ${((performance.now() - t0) / 1000).toFixed(2)} s wall${' '.repeat(30)}\n`);
    process.stdout.write(summaryTable(summary) + '\n');
    if (args.out !== undefined) process.stdout.write(`wrote ${args.out}/summary.json, ${args.out}/requests.csv${args.steps ? ', steps.csv' : ''}\n`);
  },
};
