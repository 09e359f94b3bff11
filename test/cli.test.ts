import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function stratos(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [resolve(root, 'bin/stratos.mjs'), ...args], { cwd: root, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('stratos CLI', () => {
  it('--help lists every subcommand of the contract', () => {
    const r = stratos('--help');
    expect(r.status).toBe(0);
    for (const command of ['simulate', 'sweep', 'capacity', 'report', 'calibrate', 'engine', 'serve', 'validate']) {
      expect(r.stdout).toContain(`stratos ${command}`);
    }
  });

  it('serve --help teaches its routes, and bad flags fail before any model is loaded', () => {
    const help = stratos('serve', '--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('POST /v1/completions');
    expect(help.stdout).toContain('/metrics');
    const backend = stratos('serve', '--backend', 'tpu');
    expect(backend.status).toBe(2);
    expect(backend.stderr).toMatch(/backend = tpu: allowed: cpu, gpu/);
    const model = stratos('serve', '--model', 'llama9');
    expect(model.status).toBe(2);
    expect(model.stderr).toMatch(/model = llama9: allowed: tiny/);
  });

  it('an unknown command or flag fails with a message, not silently', () => {
    const r = stratos('simulat');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/simulate/);
    const flag = stratos('simulate', '--bogus-flag', '1');
    expect(flag.status).not.toBe(0);
    expect(flag.stderr).toMatch(/bogus-flag/i);
  });

  it('simulate: bad input fails with exit 2 and a message naming file:line or the key, without a stack', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stratos-cli-'));
    const trace = join(dir, 'bad.csv');
    writeFileSync(trace, 'TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:17:03.9799600,100,20\r\n2023-11-16 18:17:04.1000000,abc,20');
    const bad = stratos('simulate', '--trace', trace, '--trace-format', 'azure', '--quiet');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(`${trace}:3`);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const tp = stratos('simulate', '--model', 'llama2-70b', '--gpu', 'a100-80gb', '--quiet');
    expect(tp.status).toBe(2);
    expect(tp.stderr).toMatch(/tp = 1: .*allowed: a larger tp/);
    const key = stratos('simulate', '--policy', 'fifo', '--quiet');
    expect(key.status).toBe(2);
    expect(key.stderr).toMatch(/policy = "fifo": allowed: static, continuous, chunked/);
  });

  it('a file that cannot be read is the user\'s error (exit 2, the path named, no stack), for --config and calibrate\'s inputs', () => {
    const missing = join(tmpdir(), 'stratos-no-such-file.yaml');
    for (const args of [
      ['simulate', '--config', missing, '--quiet'],
      ['calibrate', 'fit', missing, '--out', join(tmpdir(), 'x.json')],
      ['calibrate', 'derive', missing, '--gpu', 'h100', '--out', join(tmpdir(), 'x.json')],
      ['calibrate', 'merge', missing, missing, '--out', join(tmpdir(), 'x.csv')],
    ]) {
      const r = stratos(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(missing);
      expect(r.stderr, args.join(' ')).not.toMatch(/\n\s+at /);
    }
  });
});
