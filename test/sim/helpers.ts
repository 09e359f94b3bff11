import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** ../shared/traces beside the repo (CI layout) or /work/shared/traces; null when absent. */
export function tracesDir(): string | null {
  for (const dir of [join(repoRoot, '../shared/traces'), join(repoRoot, 'shared/traces')]) if (existsSync(dir)) return dir;
  return null;
}
