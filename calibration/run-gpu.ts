// Entry point of the bundled calibration runner (dist-calib/calibrate.mjs) for the GPU machine,
// which has Node but no npm. Same code path as `stratos calibrate run`.
// Usage: node dist-calib/calibrate.mjs --out FILE [--models a,b] [--grid full|quick] [--families f,g] [--budget-s S]
import { runCalibration, parseFamilies, parseModels } from './runner.js';

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const out = arg('out');
if (!out) {
  process.stderr.write('usage: calibrate.mjs --out FILE [--models llama2-7b,llama2-13b,llama2-70b] [--grid full|quick] [--families ...] [--budget-s 420]\n');
  process.exit(2);
}
const grid = arg('grid', 'full');
if (grid !== 'full' && grid !== 'quick') {
  process.stderr.write(`--grid must be full or quick, got ${grid}\n`);
  process.exit(2);
}
const result = runCalibration({
  out,
  models: parseModels(arg('models', 'llama2-7b,llama2-13b,llama2-70b') as string),
  grid,
  families: parseFamilies(arg('families')),
  budgetS: Number(arg('budget-s', '420')),
  root: process.cwd(),
  command: `node dist-calib/calibrate.mjs ${process.argv.slice(2).join(' ')}`,
});
process.exitCode = result.samples > 0 ? 0 : 1;
