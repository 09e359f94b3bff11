import type { AllocatorKind, EvictionPolicy, PolicyKind } from '../types.js';

export interface SchedulerConfig {
  readonly policy: PolicyKind;
  /** Sequences in one step (batch size limit). */
  readonly maxNumSeqs: number;
  /** Tokens computed in one step; for `chunked` this is the per-step budget shared by decodes and chunks. */
  readonly maxNumBatchedTokens: number;
  /** Prompt + output tokens one request may reach (the model's context limit). */
  readonly maxSeqLenTokens: number;
  /** Admission pre-flight: reject a request whose worst-case KV exceeds this fraction of capacity. */
  readonly kvAdmitFraction: number;
  /** Keep this fraction of blocks free when admitting, so running decodes rarely preempt. */
  readonly watermarkFraction: number;
  /** Waiting this long promotes a request by one priority class. */
  readonly agingUs: number;
  /** Running sequences per tenant; tenants not listed use `defaultTenantCap` (0 = no cap). */
  readonly tenantCaps: Readonly<Record<string, number>>;
  readonly defaultTenantCap: number;
  readonly kv: {
    readonly allocator: AllocatorKind;
    readonly numBlocks: number;
    readonly pageSizeTokens: number;
    readonly prefixCaching: boolean;
  };
  readonly lora: {
    readonly numSlots: number;
    readonly eviction: EvictionPolicy;
  };
}

export const DEFAULT_SCHEDULER_CONFIG: SchedulerConfig = {
  policy: 'continuous',
  maxNumSeqs: 256,
  maxNumBatchedTokens: 8192,
  maxSeqLenTokens: 4096,
  kvAdmitFraction: 0.9,
  watermarkFraction: 0.01,
  agingUs: 2_000_000,
  tenantCaps: {},
  defaultTenantCap: 0,
  kv: { allocator: 'paged', numBlocks: 4096, pageSizeTokens: 16, prefixCaching: true },
  lora: { numSlots: 8, eviction: 'lru' },
};

/** Problems with a scheduler config, each naming the key, the value and what is allowed. */
export function schedulerConfigErrors(config: SchedulerConfig): string[] {
  const errors: string[] = [];
  const positiveInt = (key: string, value: number): void => {
    if (!Number.isSafeInteger(value) || value <= 0) errors.push(`${key} = ${value}: must be a positive integer`);
  };
  positiveInt('maxNumSeqs', config.maxNumSeqs);
  positiveInt('maxNumBatchedTokens', config.maxNumBatchedTokens);
  positiveInt('maxSeqLenTokens', config.maxSeqLenTokens);
  positiveInt('agingUs', config.agingUs);
  positiveInt('kv.numBlocks', config.kv.numBlocks);
  positiveInt('kv.pageSizeTokens', config.kv.pageSizeTokens);
  if (!['static', 'continuous', 'chunked'].includes(config.policy)) {
    errors.push(`policy = ${config.policy}: must be one of static, continuous, chunked`);
  }
  if (!['paged', 'contiguous'].includes(config.kv.allocator)) {
    errors.push(`kv.allocator = ${config.kv.allocator}: must be paged or contiguous`);
  }
  if (!['lru', 'lfu'].includes(config.lora.eviction)) {
    errors.push(`lora.eviction = ${config.lora.eviction}: must be lru or lfu`);
  }
  if (!Number.isSafeInteger(config.lora.numSlots) || config.lora.numSlots < 0) {
    errors.push(`lora.numSlots = ${config.lora.numSlots}: must be a non-negative integer`);
  }
  if (!(config.kvAdmitFraction > 0 && config.kvAdmitFraction <= 1)) {
    errors.push(`kvAdmitFraction = ${config.kvAdmitFraction}: must be in (0, 1]`);
  }
  if (!(config.watermarkFraction >= 0 && config.watermarkFraction < 1)) {
    errors.push(`watermarkFraction = ${config.watermarkFraction}: must be in [0, 1)`);
  }
  if (!Number.isSafeInteger(config.defaultTenantCap) || config.defaultTenantCap < 0) {
    errors.push(`defaultTenantCap = ${config.defaultTenantCap}: must be a non-negative integer (0 = no cap)`);
  }
  for (const [tenant, cap] of Object.entries(config.tenantCaps)) {
    if (!Number.isSafeInteger(cap) || cap <= 0) errors.push(`tenantCaps.${tenant} = ${cap}: must be a positive integer`);
  }
  if (config.maxNumSeqs > config.maxNumBatchedTokens) {
    errors.push(
      `maxNumSeqs = ${config.maxNumSeqs}: must not exceed maxNumBatchedTokens = ${config.maxNumBatchedTokens} (every sequence in a step computes at least one token)`,
    );
  }
  if (config.policy !== 'chunked' && config.maxNumBatchedTokens < config.maxSeqLenTokens) {
    errors.push(
      `maxNumBatchedTokens = ${config.maxNumBatchedTokens}: must be at least maxSeqLenTokens = ${config.maxSeqLenTokens} unless policy is chunked (a whole prompt is prefilled in one step)`,
    );
  }
  return errors;
}
