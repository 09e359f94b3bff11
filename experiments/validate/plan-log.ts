// The engine's plan log: one JSON line per executed step with its whole plan and its times, so
// the comparison can price every plan the engine ran with the simulator's cost model and replay
// the schedule through the policy, on any machine, long after the GPU run. Gzip'ed on disk.
import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { BatchPlan, PlanItem } from '../../engine/policy/index.js';
import type { EngineStepRecord } from '../../engine/runtime/engine.js';

/** A logs file that cannot be read as what it should be (a user's folder, not a bug): the CLI prints the message alone. */
export class LogFormatError extends Error {
  readonly code = 'validate_logs' as const;
}

/** A logged step: the plan as the policy made it, and the engine's clock readings. */
export interface LoggedStep {
  readonly plan: BatchPlan;
  /** Loop top: admissions and schedule() saw this time. */
  readonly startUs: number;
  /** After the runner returned: the step's tokens carry this time. */
  readonly endUs: number;
  readonly scheduleUs: number;
  readonly runUs: number;
  /** GPU events around the forward and sampling; null on runners without device timing. */
  readonly gpuUs: number | null;
  /** Σ KV tokens over running sequences right after schedule. */
  readonly liveTokens0: number;
}

const PREFILL = 1;
const SAMPLES = 2;

interface Line {
  i: number; s: number; e: number; sch: number; run: number; gpu: number | null; live: number;
  pt: number; dt: number; kv: number;
  it: [number, number, number, number, number][];
  pre?: number[]; ld?: [string, number][]; ev?: [string, number][]; cp?: [number, number][];
}

export function encodeStep(r: EngineStepRecord): string {
  const p = r.plan;
  if (p.numSteps !== 1) throw new Error(`plan log: the engine runs one step per plan (got numSteps = ${p.numSteps})`);
  const line: Line = {
    i: p.stepIndex, s: r.startUs, e: r.endUs, sch: r.scheduleUs, run: r.runUs, gpu: r.gpuUs, live: r.liveTokens0,
    pt: p.numPrefillTokens, dt: p.numDecodeTokens, kv: p.kvBlocksUsedPerStep[0],
    it: p.items.map((x) => [x.seqId, x.contextTokens, x.numNewTokens, (x.isPrefill ? PREFILL : 0) | (x.samples ? SAMPLES : 0), x.adapterSlot]),
  };
  if (p.preempted.length > 0) line.pre = [...p.preempted];
  if (p.loraLoads.length > 0) line.ld = p.loraLoads.map((l) => [l.adapter, l.slot]);
  if (p.loraEvictions.length > 0) line.ev = p.loraEvictions.map((l) => [l.adapter, l.slot]);
  if (p.blockCopies.length > 0) line.cp = p.blockCopies.map((c) => [c.srcBlock, c.dstBlock]);
  return JSON.stringify(line);
}

export function decodeStep(text: string, where: string): LoggedStep {
  let l: Line;
  try {
    l = JSON.parse(text) as Line;
  } catch (e) {
    throw new LogFormatError(`${where}: not JSON: ${(e as Error).message}`);
  }
  if (!Number.isSafeInteger(l.i) || !Array.isArray(l.it)) throw new LogFormatError(`${where}: not a plan-log line (needs i and it)`);
  const items: PlanItem[] = l.it.map(([seqId, contextTokens, numNewTokens, flags, adapterSlot]) => ({
    seqId, contextTokens, numNewTokens, isPrefill: (flags & PREFILL) !== 0, samples: (flags & SAMPLES) !== 0, adapterSlot,
  }));
  const plan: BatchPlan = {
    stepIndex: l.i, numSteps: 1, items, numPrefillTokens: l.pt, numDecodeTokens: l.dt,
    preempted: l.pre ?? [],
    loraLoads: (l.ld ?? []).map(([adapter, slot]) => ({ adapter, slot })),
    loraEvictions: (l.ev ?? []).map(([adapter, slot]) => ({ adapter, slot })),
    blockCopies: (l.cp ?? []).map(([srcBlock, dstBlock]) => ({ srcBlock, dstBlock })),
    kvBlocksUsedPerStep: [l.kv],
  };
  return { plan, startUs: l.s, endUs: l.e, scheduleUs: l.sch, runUs: l.run, gpuUs: l.gpu, liveTokens0: l.live };
}

export function writePlanLog(file: string, lines: readonly string[]): void {
  writeFileSync(file, gzipSync(Buffer.from(lines.join('\n') + '\n'), { level: 9 }));
}

export function readPlanLog(file: string): LoggedStep[] {
  const text = gunzipSync(readFileSync(file)).toString('utf8');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((line, i) => decodeStep(line, `${file}:${i + 1}`));
}
