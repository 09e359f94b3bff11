import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const simDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../sim');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('sim/ tidy', () => {
  it('never reads a clock or unseeded randomness, and imports no runtime or native code', () => {
    for (const file of files(simDir)) {
      const text = readFileSync(file, 'utf8');
      for (const banned of [/Math\.random/, /Date\.now/, /new Date\(/, /performance\.now/, /setTimeout/, /setInterval/, /process\.hrtime/, /engine\/runtime/, /native\//, /experiments\//]) {
        expect(banned.test(text), `${file} uses ${banned}`).toBe(false);
      }
    }
  });
});
