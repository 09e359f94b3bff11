export type RequestStatus = 'completed' | 'rejected' | 'aborted' | 'failed' | 'pending';

/**
 * The fields every decode step of a request reads or writes (Replica.endPlan), packed TOKEN_STRIDE
 * doubles to a request in RequestRecords.tokenState: one cache line instead of four arrays' (at
 * fleet scale, with hundreds of replicas interleaved, each was a miss per item of every plan).
 * Offsets within a request's entry:
 */
export const TOKEN_LAST_US = 0; // time of its last token, µs (-1: none yet)
export const TOKEN_MAX_ITL_US = 1; // largest gap between two of its tokens, µs
export const TOKEN_DONE = 2; // output tokens generated
export const TOKEN_TENANT = 3; // dense index of its tenant (tenantNames)
export const TOKEN_STRIDE = 4;

/**
 * Per-request facts, columnar and indexed by the request's dense id (also its scheduler seq id).
 * Times are integer microseconds; -1 means "did not happen".
 */
export class RequestRecords {
  readonly tenant: string[] = [];
  /** Tenant names by dense index (tenantNames[tenantIndexOf(id)] === tenant[id]): array-indexed per-tenant counts. */
  readonly tenantNames: string[] = [];
  private readonly tenantIndexByName = new Map<string, number>();
  readonly adapter: (string | null)[] = [];
  readonly replica: number[] = [];
  readonly arrivalUs: number[] = [];
  readonly firstScheduledUs: number[] = [];
  readonly firstTokenUs: number[] = [];
  readonly finishUs: number[] = [];
  readonly inputTokens: number[] = [];
  readonly outputTokens: number[] = [];
  readonly preemptions: number[] = [];
  /** Prompt tokens served from the prefix cache at the request's (last) admission. */
  readonly cachedPromptTokens: number[] = [];
  readonly status: RequestStatus[] = [];
  readonly reason: string[] = [];
  /**
   * Token-stream fields (TOKEN_* offsets from id × TOKEN_STRIDE), for the code that writes them per
   * step; grows (replaced by a larger copy) when requests are added, so re-read it after add.
   */
  tokenState = new Float64Array(TOKEN_STRIDE * 1024);

  /** Time of the request's last token, µs; -1 if none. */
  lastTokenUsOf(id: number): number {
    return this.tokenState[id * TOKEN_STRIDE + TOKEN_LAST_US];
  }

  /** Largest gap between two of its tokens, µs (0 with fewer than two). */
  maxItlUsOf(id: number): number {
    return this.tokenState[id * TOKEN_STRIDE + TOKEN_MAX_ITL_US];
  }

  /** Output tokens it generated. */
  outputTokensDoneOf(id: number): number {
    return this.tokenState[id * TOKEN_STRIDE + TOKEN_DONE];
  }

  /** Dense index of its tenant (tenantNames). */
  tenantIndexOf(id: number): number {
    return this.tokenState[id * TOKEN_STRIDE + TOKEN_TENANT];
  }

  /** Forgets its tokens (a retry starts the stream over). */
  resetTokens(id: number): void {
    const base = id * TOKEN_STRIDE;
    this.tokenState[base + TOKEN_LAST_US] = -1;
    this.tokenState[base + TOKEN_MAX_ITL_US] = 0;
    this.tokenState[base + TOKEN_DONE] = 0;
  }

  get size(): number {
    return this.arrivalUs.length;
  }

  add(r: { tenant: string; adapter: string | null; replica: number; arrivalUs: number; inputTokens: number; outputTokens: number }): number {
    const id = this.arrivalUs.length;
    this.tenant.push(r.tenant);
    let tenantIndex = this.tenantIndexByName.get(r.tenant);
    if (tenantIndex === undefined) {
      tenantIndex = this.tenantNames.length;
      this.tenantNames.push(r.tenant);
      this.tenantIndexByName.set(r.tenant, tenantIndex);
    }
    this.adapter.push(r.adapter);
    this.replica.push(r.replica);
    this.arrivalUs.push(r.arrivalUs);
    this.firstScheduledUs.push(-1);
    this.firstTokenUs.push(-1);
    this.finishUs.push(-1);
    this.inputTokens.push(r.inputTokens);
    this.outputTokens.push(r.outputTokens);
    this.preemptions.push(0);
    this.cachedPromptTokens.push(0);
    this.status.push('pending');
    this.reason.push('');
    const base = id * TOKEN_STRIDE;
    if (base + TOKEN_STRIDE > this.tokenState.length) {
      const grown = new Float64Array(this.tokenState.length * 2);
      grown.set(this.tokenState);
      this.tokenState = grown;
    }
    this.tokenState[base + TOKEN_TENANT] = tenantIndex;
    this.resetTokens(id);
    return id;
  }
}
