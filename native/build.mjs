#!/usr/bin/env node
// Builds the native addon into native/build/Release/stratos_native.node with cmake-js in Node-API
// mode (headers from node-api-headers/node-addon-api; nothing is downloaded).
//   - CPU references: always.
//   - CUDA kernels: when nvcc is found (STRATOS_WITH_CUDA=0 forces them off, =1 makes a missing
//     nvcc an error). Built for sm_90a (H200) unless STRATOS_CUDA_ARCH says otherwise.
//   - cuBLASLt GEMM: only when cublasLt.h sits beside nvcc's headers.
// Prints what it built and why it skipped anything; exits non-zero on any compile error.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = dirname(fileURLToPath(import.meta.url));
const root = resolve(nativeDir, '..');
const outDir = join(nativeDir, 'build');
const addonPath = join(outDir, 'Release', 'stratos_native.node');
const log = (msg) => console.log(`[build:native] ${msg}`);

function isNvcc(path) {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

// The real nvcc, not a wrapper script, so CMake finds the toolkit beside it.
function findNvcc() {
  const candidates = [process.env.CUDACXX, process.env.STRATOS_NVCC, '/usr/local/cuda/bin/nvcc'];
  try {
    const dirs = readdirSync('/usr/local').filter((d) => /^cuda-\d/.test(d)).sort().reverse();
    for (const d of dirs) candidates.push(`/usr/local/${d}/bin/nvcc`);
  } catch {
    // no /usr/local: fall through to PATH
  }
  const which = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) candidates.push(which.stdout.trim());
  return candidates.find((c) => c && isNvcc(c)) ?? null;
}

function nvccVersion(nvcc) {
  try {
    const out = execFileSync(nvcc, ['--version'], { encoding: 'utf8' });
    return /release ([\d.]+)/.exec(out)?.[1] ?? 'unknown';
  } catch (err) {
    return null;
  }
}

const want = process.env.STRATOS_WITH_CUDA; // '0', '1' or unset (auto)
let withCuda = false;
let cudaWhy = '';
let nvcc = null;
if (want === '0') {
  cudaWhy = 'STRATOS_WITH_CUDA=0';
} else {
  nvcc = findNvcc();
  const version = nvcc ? nvccVersion(nvcc) : null;
  if (!nvcc || !version) {
    cudaWhy = 'nvcc not found (looked at $CUDACXX, /usr/local/cuda*/bin and PATH)';
    if (want === '1') {
      console.error(`[build:native] STRATOS_WITH_CUDA=1 but ${cudaWhy}`);
      process.exit(1);
    }
  } else {
    withCuda = true;
    cudaWhy = `nvcc ${version} at ${nvcc}`;
  }
}

let withCublas = false;
let cublasWhy = 'CUDA off';
if (withCuda) {
  const inc = [join(dirname(dirname(nvcc)), 'include'), join(dirname(dirname(nvcc)), 'targets/x86_64-linux/include')];
  const found = inc.find((d) => existsSync(join(d, 'cublasLt.h')));
  withCublas = Boolean(found);
  cublasWhy = found ? `cublasLt.h in ${found}` : `cublasLt.h not in ${inc.join(' or ')}: the GEMM translation unit is skipped`;
}

const arch = process.env.STRATOS_CUDA_ARCH ?? '90a'; // 90a: sm_90 plus wgmma (the prefill kernel)
const defines = {
  CMAKE_BUILD_TYPE: 'Release',
  WITH_CUDA: withCuda ? 'ON' : 'OFF',
  WITH_CUBLAS: withCublas ? 'ON' : 'OFF',
  ...(withCuda ? { CMAKE_CUDA_COMPILER: nvcc, CMAKE_CUDA_ARCHITECTURES: arch } : {}),
};

// cmake-js ignores changed -D options once a cache exists: start clean when they change.
const stampPath = join(outDir, 'stratos-build.json');
const stamp = JSON.stringify(defines);
if (existsSync(stampPath) && readFileSync(stampPath, 'utf8') !== stamp) {
  log('build options changed: removing native/build');
  rmSync(outDir, { recursive: true, force: true });
}

log(`CPU references: ON`);
log(`CUDA kernels:   ${withCuda ? 'ON' : 'OFF'} (${cudaWhy}${withCuda ? `, sm_${arch}` : ''})`);
log(`cuBLASLt GEMM:  ${withCublas ? 'ON' : 'OFF'} (${cublasWhy})`);

const require = createRequire(import.meta.url);
const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
const jobs = Math.max(2, Math.min(cpus().length, 16));
const args = [cmakeJs, 'build', '-d', nativeDir, '-O', outDir, '-p', String(jobs), '-l', 'warn'];
for (const [k, v] of Object.entries(defines)) args.push(`--CD${k}=${v}`);
const started = Date.now();
const res = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (res.status !== 0) {
  console.error(`[build:native] FAILED: cmake-js exited with ${res.status ?? res.signal}; see the compiler output above`);
  process.exit(1);
}
mkdirSync(outDir, { recursive: true });
writeFileSync(stampPath, stamp);

// Load what was built, in a child so a crash cannot take this script down silently.
const check = spawnSync(
  process.execPath,
  [
    '-e',
    `const m = require(${JSON.stringify(addonPath)}); console.log(JSON.stringify({ withCuda: m.withCuda, withCublas: m.withCublas, cpuOps: Object.keys(m).filter(k => k.startsWith('cpu_')).length, cudaOps: Object.keys(m).filter(k => k.startsWith('cuda_')).length }));`,
  ],
  { encoding: 'utf8' },
);
if (check.status !== 0) {
  console.error(`[build:native] FAILED: the built addon does not load:\n${check.stderr}`);
  process.exit(1);
}
log(`built ${addonPath} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${check.stdout.trim()}`);
