// Keeps the architecture honest: the shared policy core and the simulator are deterministic
// (time and randomness are passed in), and imports follow the design's directions:
//   experiments → sim, engine, calibration;  sim → engine/policy, sim;  engine → engine/policy, native;
//   calibration → native;  engine/policy → nothing outside itself;  nothing imports experiments.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function sourceFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'build' || name === 'dist') return [];
    return statSync(path).isDirectory() ? sourceFiles(path) : /\.(ts|mts|js|mjs)$/.test(name) ? [path] : [];
  });
}

/** Source without comments, so a comment that mentions Date.now is not a violation. */
function code(path: string): string {
  return readFileSync(path, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

function imports(path: string): string[] {
  const text = code(path);
  const found: string[] = [];
  for (const m of text.matchAll(/(?:import|export)\s[^'"`]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    found.push(m[1] ?? m[2] ?? m[3]);
  }
  return found;
}

/** The top-level area a relative import lands in, e.g. 'engine/policy', 'sim', 'native'. */
function areaOf(fromFile: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const target = relative(root, resolve(dirname(fromFile), specifier));
  const [top, second] = target.split('/');
  return top === 'engine' ? `engine/${second === 'policy' ? 'policy' : 'runtime'}` : top;
}

const NONDETERMINISM = [/Math\.random\s*\(/, /Date\.now\s*\(/, /performance\.now\s*\(/, /\bsetTimeout\s*\(/, /\bsetInterval\s*\(/, /process\.hrtime/, /new Date\s*\(/];

const ALLOWED: Record<string, readonly string[]> = {
  'engine/policy': ['engine/policy'],
  sim: ['sim', 'engine/policy'],
  'engine/runtime': ['engine/runtime', 'engine/policy', 'native'],
  native: ['native'],
  calibration: ['calibration', 'native'],
};

describe('tidy: determinism and import directions', () => {
  for (const area of ['engine/policy', 'sim']) {
    it(`${area}/ never reads a clock, a timer or Math.random`, () => {
      const files = sourceFiles(join(root, area));
      expect(files.length).toBeGreaterThan(0);
      for (const file of files) {
        const text = code(file);
        for (const pattern of NONDETERMINISM) {
          expect(pattern.test(text), `${relative(root, file)} uses ${pattern.source}`).toBe(false);
        }
      }
    });
  }

  it('engine/policy/ imports nothing outside itself (not even node: modules or packages)', () => {
    for (const file of sourceFiles(join(root, 'engine/policy'))) {
      for (const specifier of imports(file)) {
        expect(specifier.startsWith('.'), `${relative(root, file)} imports package ${specifier}`).toBe(true);
        expect(areaOf(file, specifier), `${relative(root, file)} imports ${specifier}`).toBe('engine/policy');
      }
    }
  });

  it('every area imports only what the design allows, and nothing imports experiments/', () => {
    for (const [area, allowed] of Object.entries(ALLOWED)) {
      const dir = area === 'engine/runtime' ? join(root, 'engine') : join(root, area);
      for (const file of sourceFiles(dir)) {
        if (area === 'engine/runtime' && relative(root, file).startsWith('engine/policy')) continue;
        for (const specifier of imports(file)) {
          const target = areaOf(file, specifier);
          if (target === null) continue;
          expect(allowed.includes(target), `${relative(root, file)} (${area}) imports ${specifier} (${target})`).toBe(true);
        }
      }
    }
  });

  it('the checker itself catches a violation', () => {
    expect(NONDETERMINISM.some((p) => p.test('const t = Date.now();'))).toBe(true);
    expect(NONDETERMINISM.some((p) => p.test('// Date.now() is banned here'.replace(/\/\/.*$/, '')))).toBe(false);
    expect(areaOf(join(root, 'engine/policy/x.ts'), '../../sim/run.js')).toBe('sim');
  });
});
