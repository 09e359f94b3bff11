// Bundles the prefill per-op profile (run9.ts) for the GPU machine (Node, no npm): dist-prof/run9.mjs.
import { build } from 'esbuild';

await build({ bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning', entryPoints: ['engine/runtime/gpu-check/run9.ts'], outfile: 'dist-prof/run9.mjs' });
