// `npm start`: the main job. Until the fleet scenario (the case study at fleet scale) lands, it
// runs the case study notebook's TODO 8 through the simulator: one Llama-2-13B replica on an
// A100-80GB under Poisson λ = 10 req/s with 100–500 output tokens, static vs continuous batching,
// and prints the comparison. Every number is computed by the simulation.
import { parseSimConfig } from '../sim/config.js';
import { runConfig } from '../sim/run.js';

interface Row {
  readonly label: string;
  readonly summary: Record<string, unknown>;
}

function pick(summary: Record<string, unknown>, path: string): number {
  let value: unknown = summary;
  for (const key of path.split('.')) value = (value as Record<string, unknown>)[key];
  return typeof value === 'number' ? value : NaN;
}

function format(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '—';
}

function costModelLabel(summary: Record<string, unknown>): string {
  const model = summary.cost_model as { name?: string; calibration?: string } | undefined;
  return `${model?.name ?? 'unknown'} (${model?.calibration ?? 'unknown'})`;
}

export async function runStart(): Promise<void> {
  const rows: Row[] = [];
  for (const policy of ['static', 'continuous'] as const) {
    for (const maxNumSeqs of [8, 256]) {
      process.stderr.write(`simulating ${policy} batching, batch limit ${maxNumSeqs} …\n`);
      const config = parseSimConfig({
        model: 'llama2-13b',
        gpu: 'a100-80gb',
        policy,
        seed: 1,
        scheduler: { maxNumSeqs },
        workload: { rate: 10, durationS: 120, inputTokens: 'constant:32', outputTokens: 'uniform:100:500' },
      });
      rows.push({ label: `${policy} (batch ≤ ${maxNumSeqs})`, summary: runConfig(config).summary });
    }
  }
  const metrics: [string, string, number][] = [
    ['requests completed', 'completed', 0],
    ['output tokens/s', 'throughput_output_tokens_per_s', 0],
    ['TTFT p50 (ms)', 'ttft_ms.p50', 1],
    ['TTFT p99 (ms)', 'ttft_ms.p99', 1],
    ['ITL p50 (ms)', 'itl_ms.p50', 1],
    ['ITL p99 (ms)', 'itl_ms.p99', 1],
    ['E2E p50 (ms)', 'e2e_ms.p50', 0],
    ['SLA attainment', 'sla.attainment', 3],
  ];
  const width = 26;
  const lines = [
    'Stratos: the case study notebook\'s TODO 8 in simulation — Llama-2-13B on one A100-80GB,',
    'Poisson λ = 10 req/s for 120 s, 32-token prompts, 100–500 output tokens (seed 1).',
    `Cost model: ${costModelLabel(rows[0].summary)}.`,
    '',
    'metric'.padEnd(22) + rows.map((r) => r.label.padStart(width)).join(''),
    ...metrics.map(([name, path, digits]) => name.padEnd(22) + rows.map((r) => format(pick(r.summary, path), digits).padStart(width)).join('')),
    '',
    'Reproduce one column: npx stratos simulate --model llama2-13b --gpu a100-80gb --policy continuous --rate 10 \\',
    '  --duration 120 --input-tokens constant:32 --output-tokens uniform:100:500 --max-num-seqs 256 --out out/todo8',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}
