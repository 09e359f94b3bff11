import { mkdirSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { SimConfig } from './config.js';
import { RngStreams } from './kernel/rng.js';
import { requestsCsv, STEP_COLUMNS, stepCsvLine } from './metrics/csv.js';
import { fleetSummary } from './fleet/report.js';
import { buildSummary } from './metrics/summary.js';
import { runSimulation, type SimulationHooks, type SimulationResult } from './simulation.js';
import { buildWorkload } from './workload/build.js';

export interface RunOutputs {
  readonly result: SimulationResult;
  readonly summary: Record<string, unknown>;
}

/**
 * Runs a config end to end and, with `outDir`, writes summary.json, requests.csv and (with
 * `writeSteps`) steps.csv. Outputs hold no wall times, so equal inputs give equal bytes.
 */
export function runConfig(config: SimConfig, opts: { outDir?: string; writeSteps?: boolean; hooks?: SimulationHooks } = {}): RunOutputs {
  const rngs = new RngStreams(config.seed);
  const { source } = buildWorkload(config, rngs);
  let stepsFd: number | null = null;
  let stepBuffer: string[] = [];
  const flush = (): void => {
    if (stepsFd !== null && stepBuffer.length > 0) writeSync(stepsFd, stepBuffer.join('\n') + '\n');
    stepBuffer = [];
  };
  if (opts.outDir !== undefined) mkdirSync(opts.outDir, { recursive: true });
  if (opts.outDir !== undefined && opts.writeSteps) {
    stepsFd = openSync(join(opts.outDir, 'steps.csv'), 'w');
    writeSync(stepsFd, STEP_COLUMNS.join(',') + '\n');
  }
  const hooks: SimulationHooks = {
    ...opts.hooks,
    ...(stepsFd !== null
      ? {
          onStep: (row) => {
            stepBuffer.push(stepCsvLine(row));
            if (stepBuffer.length >= 65536) flush();
          },
        }
      : {}),
  };
  let result: SimulationResult;
  try {
    result = runSimulation(config, source, hooks);
    flush();
  } finally {
    if (stepsFd !== null) closeSync(stepsFd);
  }
  const summary = result.fleet === undefined ? buildSummary(result) : fleetSummary(result, buildSummary(result));
  if (opts.outDir !== undefined) {
    writeFileSync(join(opts.outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    writeFileSync(join(opts.outDir, 'requests.csv'), requestsCsv(result.records, result.fleet === undefined ? config.model : fleetModelOf(result)));
  }
  return { result, summary };
}

/** The model of each request of a fleet: its pool's, or '' when it was refused before a pool was known. */
function fleetModelOf(result: SimulationResult): (id: number) => string {
  const f = result.fleet!;
  return (id) => (f.requestPool[id] >= 0 ? f.pools[f.requestPool[id]].model : '');
}
