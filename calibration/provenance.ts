// Where a calibration run's numbers came from: the GPU and its driver, clocks before and after,
// the CUDA runtime, a hash of the kernel sources that were built, the date and the grids.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, relative } from 'node:path';

/** Files under native/ that make the kernels: sources, headers and the build script. */
export function kernelSourceFiles(root: string): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir)
      .sort()
      .flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? walk(path) : /\.(cu|cuh|cc|cpp|h|hpp)$/.test(name) ? [path] : [];
      });
  return [...walk(join(root, 'native', 'src')), ...walk(join(root, 'native', 'include')), join(root, 'native', 'CMakeLists.txt')];
}

/** sha256 over (relative path, sha256 of contents) of every kernel source, in path order. */
export function kernelSourcesSha256(root: string): { sha256: string; files: number; perFile: Record<string, string> } {
  const files = kernelSourceFiles(root);
  const perFile: Record<string, string> = {};
  const all = createHash('sha256');
  for (const f of files) {
    const rel = relative(root, f).split('\\').join('/');
    const h = createHash('sha256').update(readFileSync(f)).digest('hex');
    perFile[rel] = h;
    all.update(`${rel}\0${h}\n`);
  }
  return { sha256: all.digest('hex'), files: files.length, perFile };
}

const SMI_FIELDS = ['name', 'driver_version', 'clocks.sm', 'clocks.mem', 'clocks.max.sm', 'clocks.max.mem', 'clocks.applications.graphics', 'power.limit', 'temperature.gpu', 'persistence_mode', 'pstate'];

/** nvidia-smi's view of GPU 0 (each field, or the reason it could not be read). */
export function nvidiaSmi(): Record<string, string> {
  const r = spawnSync('nvidia-smi', [`--query-gpu=${SMI_FIELDS.join(',')}`, '--format=csv,noheader'], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0 || !r.stdout) return { error: (r.stderr || r.error?.message || `exit ${r.status}`).trim() };
  const values = r.stdout.split('\n')[0].split(',').map((v) => v.trim());
  const out: Record<string, string> = {};
  SMI_FIELDS.forEach((f, i) => (out[f] = values[i] ?? ''));
  const v = spawnSync('nvidia-smi', [], { encoding: 'utf8', timeout: 20_000 });
  const cuda = /CUDA Version:\s*([0-9.]+)/.exec(v.stdout ?? '');
  if (cuda) out.driverCudaVersion = cuda[1];
  return out;
}

export function hostInfo(): Record<string, unknown> {
  const c = cpus();
  return { node: process.version, cpuModel: c[0]?.model ?? 'unknown', cpuCount: c.length, platform: process.platform };
}
