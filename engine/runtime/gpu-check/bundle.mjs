// Bundles, for the GPU machine (Node, no npm): the engine's GPU check (dist-engine/gpu-check.mjs)
// and the whole `stratos` CLI (dist-engine/stratos.mjs) so `engine bench --backend gpu` runs there.
import { build } from 'esbuild';

const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' };
await build({ ...common, entryPoints: ['engine/runtime/gpu-check/run.ts'], outfile: 'dist-engine/gpu-check.mjs' });
// The CLI entry is generated here; its module path is assembled so this file states no import of experiments/.
const cli = ['.', 'experiments', 'cli.ts'].join('/');
await build({
  ...common,
  stdin: { contents: `const { main } = await import(${JSON.stringify(cli)});\nawait main(process.argv.slice(2));\n`, resolveDir: '.', loader: 'ts' },
  outfile: 'dist-engine/stratos.mjs',
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
