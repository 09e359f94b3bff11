// Bundles, for the GPU machine (Node, no npm): the CUDA-graph check (dist-graph/run7.mjs) and the
// engine's GPU check (dist-graph/gpu-check.mjs, for the tiny comparison with transformers) and the
// run5 check (dist-graph/gpu-check5.mjs, for TODO 9).
import { build } from 'esbuild';

const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' };
await build({ ...common, entryPoints: ['engine/runtime/gpu-check/run7.ts'], outfile: 'dist-graph/run7.mjs' });
await build({ ...common, entryPoints: ['engine/runtime/gpu-check/run.ts'], outfile: 'dist-graph/gpu-check.mjs' });
await build({ ...common, entryPoints: ['engine/runtime/gpu-check/run5.ts'], outfile: 'dist-graph/gpu-check5.mjs' });
