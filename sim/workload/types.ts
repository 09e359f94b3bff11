import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { PromptContent } from '../../engine/policy/index.js';

/** One request of a workload, before it is routed to a replica. */
export interface WorkloadRequest {
  readonly arrivalUs: number;
  readonly tenant: string;
  readonly adapter: string | null;
  readonly priorityClass: number;
  readonly promptTokens: number;
  /** The true output length (the simulator knows it; the policy sees it as maxOutputTokens). */
  readonly outputTokens: number;
  readonly content?: PromptContent;
}

/** Requests in arrival order, pulled one at a time so the event queue holds one pending arrival. */
export interface WorkloadSource {
  /** The next request, or null when the workload is exhausted. Arrival times never decrease. */
  next(): WorkloadRequest | null;
}

export function arraySource(requests: readonly WorkloadRequest[]): WorkloadSource {
  let i = 0;
  return { next: () => (i < requests.length ? requests[i++] : null) };
}

/** A trace file that cannot be read at all (missing, a folder, no permission): the message names it. */
export class TraceFileError extends Error {
  readonly code = 'trace_file' as const;
}

/** The bytes of a trace file, or a TraceFileError naming the file and why. */
export function readTraceFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a folder, not a file' : code === 'EACCES' ? 'not readable (permission)' : (e as Error).message;
    throw new TraceFileError(`trace file ${file}: ${why}`);
  }
}

/** A text trace's contents: gunzipped when the name ends in .gz, read as UTF-8 (readTraceFile's errors). */
export function readTraceText(file: string): string {
  const raw = readTraceFile(file);
  return (file.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
}

/** A malformed input line: the message names file:line, the value and what is allowed. */
export class TraceFormatError extends Error {
  readonly code = 'trace_format' as const;
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'TraceFormatError';
  }
}
