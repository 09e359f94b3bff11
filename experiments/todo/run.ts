// `npm run todo -- [N ...] [--workers K] [--fresh]`: runs the notebook's comparisons (TODO 1–10,
// experiments/todo/todoNN-*.yaml) as sweeps into experiments/results/todo/todoNN/ (results.csv,
// points/, report.html, todo.csv), then rewrites experiments/results/todo/README.md from the
// CSVs. No N: all ten. A finished point is not run again (the sweep resumes); --fresh starts over.
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSimConfig } from '../../sim/config.js';
import { runConfig } from '../../sim/run.js';
import { writeReport } from '../report/write.js';
import { runSweep } from '../sweep/run.js';
import { loadSweepSpec, type SweepSpec } from '../sweep/spec.js';
import { readPoint } from '../sweep/store.js';
import { todoCsv } from './columns.js';
import { writeTodoReadme } from './readme.js';

export class TodoError extends Error {
  readonly code = 'todo' as const;
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TODO_CONFIG_DIR = join(root, 'experiments', 'todo');
export const TODO_RESULTS_DIR = join(root, 'experiments', 'results', 'todo');

/** The config file of TODO n (todoNN-*.yaml). */
export function todoConfigFile(n: number, configDir = TODO_CONFIG_DIR): string {
  const prefix = `todo${String(n).padStart(2, '0')}-`;
  const files = readdirSync(configDir).filter((f) => f.startsWith(prefix) && f.endsWith('.yaml'));
  if (files.length !== 1) throw new TodoError(`TODO ${n}: expected one ${prefix}*.yaml in ${configDir}, found ${files.length}; allowed: 1 to 10`);
  return join(configDir, files[0]);
}

export function todoDirName(n: number): string {
  return `todo${String(n).padStart(2, '0')}`;
}

/**
 * kv.cache = none reaches the simulation only where sim/simulation.ts's buildCostModel passes it
 * to createCostModel; a sweep run without that would record cached-decode results under a
 * "none" label. One tiny run says whether it is wired before any point is run.
 */
export function checkNoKvCacheWired(): void {
  const config = parseSimConfig({ model: 'llama2-7b', gpu: 'h200', kv: { cache: 'none', prefixCaching: false }, workload: { rate: 1, durationS: 2, inputTokens: 'constant:8', outputTokens: 'constant:2' } });
  const name = String((runConfig(config).summary.cost_model as { name?: unknown } | undefined)?.name ?? '');
  if (!name.endsWith('+no-kv-cache')) {
    throw new TodoError(
      `kv.cache = none is not wired into the simulation yet (its cost model is "${name}"): sim/simulation.ts buildCostModel must pass \`kvCache: config.kv.cache\` to createCostModel; TODO 1 cannot run until it does`,
    );
  }
}

export interface TodoRunOptions {
  readonly workers?: number;
  readonly fresh?: boolean;
  readonly configDir?: string;
  readonly resultsDir?: string;
  readonly log?: (line: string) => void;
}

/** Runs TODO n's sweep, its report and todo.csv; returns the output directory. */
export async function runTodo(n: number, opts: TodoRunOptions = {}): Promise<string> {
  const file = todoConfigFile(n, opts.configDir);
  const spec: SweepSpec = loadSweepSpec(file);
  if (spec.expanded.some((p) => p.config.kv.cache === 'none')) checkNoKvCacheWired();
  const outDir = join(opts.resultsDir ?? TODO_RESULTS_DIR, todoDirName(n));
  if (opts.fresh) rmSync(outDir, { recursive: true, force: true });
  const log = opts.log ?? (() => {});
  const r = await runSweep(spec, { outDir, workers: opts.workers ?? 1 });
  log(`TODO ${n}: ${r.ran} points run, ${r.skipped} already done -> ${r.csvFile}`);
  writeFileSync(join(outDir, 'todo.csv'), todoCsv(spec.base, spec.expanded.map((p) => readPoint(outDir, p.id))));
  const report = writeReport(outDir);
  log(`TODO ${n}: ${report.file} (${report.charts} charts)`);
  return outDir;
}

function parseArgs(argv: string[]): { todos: number[]; workers: number; fresh: boolean } {
  const todos: number[] = [];
  let workers = 1;
  let fresh = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--fresh') fresh = true;
    else if (a === '--workers') workers = Number(argv[++i]);
    else if (/^\d+$/.test(a) && Number(a) >= 1 && Number(a) <= 10) todos.push(Number(a));
    else throw new TodoError(`todo: ${a}: not a TODO number or flag; allowed: 1 to 10, --workers K, --fresh`);
  }
  if (!Number.isInteger(workers) || workers < 1) throw new TodoError(`todo: --workers = ${workers}: must be a positive integer`);
  return { todos: todos.length > 0 ? todos : [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], workers, fresh };
}

async function main(): Promise<void> {
  const { todos, workers, fresh } = parseArgs(process.argv.slice(2));
  const failed: string[] = [];
  for (const n of todos) {
    try {
      await runTodo(n, { workers, fresh, log: (l) => process.stderr.write(`${l}\n`) });
    } catch (e) {
      // A TODO that cannot run (a user-facing error) does not stop the others.
      if (!(e instanceof Error && typeof (e as { code?: unknown }).code === 'string')) throw e;
      process.stderr.write(`todo: TODO ${n}: ${e.message}\n`);
      failed.push(`TODO ${n}`);
    }
  }
  if (failed.length > 0) process.exitCode = 2;
  const readme = writeTodoReadme(TODO_RESULTS_DIR, root);
  process.stderr.write(`wrote ${readme}\n`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: Error & { code?: string }) => {
    process.stderr.write(`todo: ${e.code !== undefined ? e.message : (e.stack ?? e.message)}\n`);
    process.exitCode = e.code !== undefined ? 2 : 1;
  });
}
