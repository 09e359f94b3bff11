// Bundles native/gpu-tests/run.ts (and native/index.ts) into dist/gpu-tests.mjs, and gemv.ts into
// dist/gemv.mjs, for the GPU machine, which has Node (carried in .device) but no npm.
import { build } from 'esbuild';

await build({
  entryPoints: ['native/gpu-tests/run.ts'],
  outfile: 'dist/gpu-tests.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'info',
});
await build({
  entryPoints: ['native/gpu-tests/gemv.ts'],
  outfile: 'dist/gemv.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'info',
});
