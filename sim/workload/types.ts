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

/** A malformed input line: the message names file:line, the value and what is allowed. */
export class TraceFormatError extends Error {
  readonly code = 'trace_format' as const;
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'TraceFormatError';
  }
}
