// Bundles the prefill per-op profile (run9.ts) and the GEMM data check (calibration/gemm-data.ts) for the GPU
// machine (Node, no npm): dist-prof/run9.mjs, dist-prof/gemm-data.mjs, dist-prof/gemm-operands.mjs, dist-prof/lora-steps.mjs,
// dist-prof/decode-uneven.mjs, dist-prof/gemm-footprint.mjs.
import { build } from 'esbuild';

const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' };
await build({ ...common, entryPoints: ['engine/runtime/gpu-check/run9.ts'], outfile: 'dist-prof/run9.mjs' });
await build({ ...common, entryPoints: ['calibration/gemm-data.ts'], outfile: 'dist-prof/gemm-data.mjs' });
await build({ ...common, entryPoints: ['experiments/validate/gemm-operands.ts'], outfile: 'dist-prof/gemm-operands.mjs' });
await build({ ...common, entryPoints: ['engine/runtime/gpu-check/lora-steps.ts'], outfile: 'dist-prof/lora-steps.mjs' });
await build({ ...common, entryPoints: ['experiments/validate/decode-uneven.ts'], outfile: 'dist-prof/decode-uneven.mjs' });
await build({ ...common, entryPoints: ['calibration/gemm-footprint.ts'], outfile: 'dist-prof/gemm-footprint.mjs' });
