// Bundles, for the GPU machine (Node, no npm): the whole `stratos` CLI into dist-validate/stratos.mjs,
// and copies the traces the validation config names into dist-validate/traces.
import { build } from 'esbuild';
import { cpSync, mkdirSync } from 'node:fs';

const cli = ['.', 'experiments', 'cli.ts'].join('/');
await build({
  bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning',
  stdin: { contents: `const { main } = await import(${JSON.stringify(cli)});\nawait main(process.argv.slice(2));\n`, resolveDir: '.', loader: 'ts' },
  outfile: 'dist-validate/stratos.mjs',
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
const traces = process.argv[2] ?? '../shared/traces';
for (const rel of ['azure-llm-2023/AzureLLMInferenceTrace_conv.csv', 'mooncake-fast25/conversation_trace.jsonl.gz']) {
  mkdirSync(`dist-validate/traces/${rel.split('/')[0]}`, { recursive: true });
  cpSync(`${traces}/${rel}`, `dist-validate/traces/${rel}`);
}
