// The shared policy core: the only module both runners (sim/ and engine/) import from engine/policy.
export * from './types.js';
export { assert, InvariantError } from './assert.js';
export { chainHash, hashInts, hashString, tokenContent } from './hash.js';
export { ceilDiv, NO_PREFIX_MATCH, type KvAllocator, type PrefixMatch } from './kv-allocator.js';
export { PagedAllocator, type PagedAllocatorConfig } from './paged-allocator.js';
export { ContiguousAllocator, type ContiguousAllocatorConfig } from './contiguous-allocator.js';
export { LoraCache, type LoraAcquisition } from './lora-cache.js';
export { WaitingQueue } from './waiting-queue.js';
export { DEFAULT_SCHEDULER_CONFIG, schedulerConfigErrors, type SchedulerConfig } from './scheduler/config.js';
export { Scheduler, isDecoding, newSeqState, prefillTarget, type AdmissionVerdict } from './scheduler/scheduler.js';
export { StaticScheduler } from './scheduler/static.js';
export { ContinuousScheduler } from './scheduler/continuous.js';
export { ChunkedScheduler } from './scheduler/chunked.js';
export { createScheduler, POLICY_KINDS } from './scheduler/registry.js';
