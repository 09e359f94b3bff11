// The real engine: the shared policy core driving a Llama model (or a fake) through one loop.
export { RealClock, VirtualClock, type Clock } from './clock.js';
export { Engine, syntheticPrompt, type EngineObserver, type EngineOptions, type EngineRequest, type EngineRequestSource, type EngineResult, type EngineStepRecord } from './engine.js';
export { EngineError } from './errors.js';
export { DecodeGraphs, decodeGraphKey, graphLayout, type DecodeGraphKey } from './decode-graphs.js';
export { FakeRunner, fakeToken, type StepDurationFn } from './fake-runner.js';
export { LlamaModel, planLayout, type ForwardInput, type ForwardSeq, type HostLogits, type KvCacheShape } from './llama.js';
export { fromHfConfig, kvBytesPerToken, MODEL_CONFIG_NAMES, MODEL_CONFIGS, modelConfig, modelConfigErrors, numParams, toHfConfig, type ModelConfig } from './model-config.js';
export { argmaxRows, LlamaRunner, type Backend, type LlamaRunnerOptions } from './model-runner.js';
export { GREEDY, type ModelRunner, type RunnerItem, type RunnerResult, type RunnerStep, type SamplingParams } from './runner.js';
export { openCheckpoint, readSafetensorsHeader, readTensorData, writeSafetensors, type StEntry } from './safetensors.js';
export { loadHfFolder, randomWeights, weightSpecs, writeHfFolder, type ModelWeights, type WeightDtype, type WeightSpec } from './weights.js';
