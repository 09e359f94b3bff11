// Bundles, for the GPU machine (Node, no npm), run 5's programs into dist-engine5/: the baselines
// and LoRA check (gpu-check5.mjs) and the whole `stratos` CLI (stratos.mjs) for `engine bench`.
import { build } from 'esbuild';

const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' };
await build({ ...common, entryPoints: ['engine/runtime/gpu-check/run5.ts'], outfile: 'dist-engine5/gpu-check5.mjs' });
// The CLI entry is generated here; its module path is assembled so this file states no import of experiments/.
const cli = ['.', 'experiments', 'cli.ts'].join('/');
await build({
  ...common,
  stdin: { contents: `const { main } = await import(${JSON.stringify(cli)});\nawait main(process.argv.slice(2));\n`, resolveDir: '.', loader: 'ts' },
  outfile: 'dist-engine5/stratos.mjs',
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
