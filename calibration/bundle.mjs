// Bundles the calibration runner (calibration/run-gpu.ts + native/index.ts) into
// dist-calib/calibrate.mjs for the GPU machine, which has Node (carried in .device) but no npm.
import { build } from 'esbuild';

await build({
  entryPoints: ['calibration/run-gpu.ts'],
  outfile: 'dist-calib/calibrate.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'info',
});
