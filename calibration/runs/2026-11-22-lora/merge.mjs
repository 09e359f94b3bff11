// Merges calibration samples: every row of BASE except family `lora`, plus every row of LORA.
// Usage: node calibration/runs/2026-11-22-lora/merge.mjs BASE.csv.gz LORA.csv.gz OUT.csv.gz
// The header keeps BASE's provenance (its date names the profile) and records LORA's as `loraRun`.
import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';

const START = '# stratos-calibration-samples ';
const END = '# stratos-calibration-end ';
const [basePath, loraPath, outPath] = process.argv.slice(2);
if (!basePath || !loraPath || !outPath) throw new Error('usage: merge.mjs BASE.csv.gz LORA.csv.gz OUT.csv.gz');
const lines = (p) => gunzipSync(readFileSync(p)).toString('utf8').split('\n').filter((l) => l.length > 0);
const base = lines(basePath);
const lora = lines(loraPath);
for (const f of [base, lora]) if (!f[0].startsWith(START) || !f[f.length - 1].startsWith(END)) throw new Error('not a complete samples file');
const baseMeta = JSON.parse(base[0].slice(START.length));
const loraMeta = JSON.parse(lora[0].slice(START.length));
const loraEnd = JSON.parse(lora[lora.length - 1].slice(END.length));
const header = base[1];
if (lora[1] !== header) throw new Error('column headers differ');
const isRow = (l) => !l.startsWith('#') && l !== header;
const kept = base.filter((l) => isRow(l) && !l.startsWith('lora,'));
const added = lora.filter((l) => isRow(l));
if (added.some((l) => !l.startsWith('lora,'))) throw new Error('the lora file holds other families');
const meta = { ...baseMeta, loraRun: { ...loraMeta, end: loraEnd, note: 'family lora replaced by this run (token-chunked lora kernels)' } };
const out = [START + JSON.stringify(meta), header, ...kept, ...added, base[base.length - 1]].join('\n') + '\n';
writeFileSync(outPath, gzipSync(out, { level: 9 }));
process.stdout.write(`kept ${kept.length} rows, replaced ${base.filter((l) => l.startsWith('lora,')).length} lora rows by ${added.length}\n`);
