// The validation config: which workloads the real engine runs (and how often), and the capacity
// measurement that places the trace replays at fractions of the engine's load limit. Every
// workload is a simulator config, so the simulator replays exactly what the engine ran.
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import type { SimConfigInput } from '../../sim/config.js';

export class ValidateConfigError extends Error {
  readonly code = 'validate_config' as const;
}

const name = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lower-case letters, digits, ".", "_" and "-" (it names a folder)');

const workloadSchema = z.strictObject({
  name,
  /** A `stratos simulate` config (trace files may be written `traces:REL`, see resolveTracePath). */
  config: z.record(z.string(), z.unknown()),
  /**
   * Replay the trace at this fraction of the engine's measured capacity: sets trace.rateScale
   * and trace.endS (from durationS) once the capacity is known. Needs config.trace.
   */
  load: z.number().positive().optional(),
  /** With `load`: seconds of replayed traffic. */
  durationS: z.number().positive().default(30),
});

export const validateConfigSchema = z.strictObject({
  /** The GPU the engine runs on; the simulator prices it with this GPU's calibrated profile. */
  gpu: z.string().min(1).default('h200'),
  /** Engine runs per workload (run-to-run spread needs at least two). */
  runs: z.number().int().min(1).max(10).default(2),
  /**
   * The capacity measurement: `config`'s requests all arrive at time 0 (offline) and the
   * capacity is the completion rate between 10% and 90% of them finished (no start-up or tail).
   */
  capacity: z
    .strictObject({
      name,
      config: z.record(z.string(), z.unknown()),
    })
    .optional(),
  workloads: z.array(workloadSchema).min(1),
});

export type ValidateConfig = z.output<typeof validateConfigSchema>;
export type WorkloadSpec = z.output<typeof workloadSchema>;

export function parseValidateConfig(raw: unknown, source: string): ValidateConfig {
  const result = validateConfigSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ValidateConfigError(`invalid ${source}:\n  ${lines.join('\n  ')}`);
  }
  const config = result.data;
  const names = new Set<string>();
  for (const w of config.workloads) {
    if (names.has(w.name)) throw new ValidateConfigError(`invalid ${source}: workloads: the name ${w.name} appears twice`);
    names.add(w.name);
    if (w.load !== undefined && w.config.trace === undefined) throw new ValidateConfigError(`invalid ${source}: workloads.${w.name}.load needs config.trace (a trace replay is what gets scaled)`);
    if (w.load !== undefined && config.capacity === undefined) throw new ValidateConfigError(`invalid ${source}: workloads.${w.name}.load needs a capacity section to measure the capacity first`);
  }
  if (config.capacity !== undefined && names.has(config.capacity.name)) throw new ValidateConfigError(`invalid ${source}: capacity.name ${config.capacity.name} is also a workload name`);
  return config;
}

/** Where trace files named `traces:REL` live (a file REL, or REL.gz). */
export const TRACE_PREFIX = 'traces:';

/** Resolves `traces:REL` under `tracesDir` (REL or REL.gz); other paths are kept. */
export function resolveTracePath(file: string, tracesDir: string): string {
  if (!file.startsWith(TRACE_PREFIX)) return file;
  const rel = file.slice(TRACE_PREFIX.length);
  if (isAbsolute(rel) || rel.split('/').includes('..')) throw new ValidateConfigError(`trace file ${file}: must be a relative path inside the traces folder`);
  for (const candidate of [join(tracesDir, rel), join(tracesDir, rel + '.gz')]) if (existsSync(candidate)) return candidate;
  throw new ValidateConfigError(`trace file ${file}: neither ${join(tracesDir, rel)} nor its .gz exists (--traces names the folder)`);
}

/** The `traces:` names a config refers to (to copy them beside the logs). */
export function traceNamesOf(config: Record<string, unknown>): string[] {
  const trace = config.trace as { file?: unknown } | undefined;
  return typeof trace?.file === 'string' && trace.file.startsWith(TRACE_PREFIX) ? [trace.file.slice(TRACE_PREFIX.length)] : [];
}

/** A copy of `config` with its `traces:` file resolved and the GPU set (deep enough for trace). */
export function withResolvedTrace(config: Record<string, unknown>, tracesDir: string, gpu: string): SimConfigInput {
  const out: Record<string, unknown> = { gpu, ...config };
  const trace = config.trace as Record<string, unknown> | undefined;
  if (trace !== undefined && typeof trace.file === 'string') out.trace = { ...trace, file: resolveTracePath(trace.file, tracesDir) };
  return out as SimConfigInput;
}
