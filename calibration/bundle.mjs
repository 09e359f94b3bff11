// Bundles, for the GPU machine (Node carried in .device, no npm): the calibration runner
// (calibration/run-gpu.ts + native/index.ts) into dist-calib/calibrate.mjs, or with the argument
// `power` the power microbenchmark (calibration/power-bench.ts) into dist-power/power-bench.mjs.
import { build } from 'esbuild';

const power = process.argv[2] === 'power';
await build({
  entryPoints: [power ? 'calibration/power-bench.ts' : 'calibration/run-gpu.ts'],
  outfile: power ? 'dist-power/power-bench.mjs' : 'dist-calib/calibrate.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'info',
});
