// decodeGemv on the GPU (issue 6, the 7B batch-1 decode target): (1) against its CPU reference for
// every epilogue, with and without the norm, launched plainly and as a programmatic dependent, on
// odd and model shapes, and the one-row decode's other fusions (rope writing the KV cache, paged
// decode merging its split) against the unfused kernels, bit for bit; (2) its speed against cuBLAS at m = 1 on the Llama-2 7B and 13B layer
// shapes, as TB/s of weight traffic beside the device-to-device copy bandwidth of the same run.
// Timings are CUDA-graph replays of back-to-back calls over enough weight copies (>= 256 MB) that
// L2 holds none of them. Bundled by native/gpu-tests/bundle.mjs to dist/gemv.mjs.
// Usage: node dist/gemv.mjs OUT_DIR
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpu, decode, f32ToBf16, gpu, type DeviceBuffer, type GemvEpilogue } from '../index.js';
import { nmse, rng } from './numeric.js';
import { timeGraphOn } from './timing.js';

const outDir = process.argv[2] ?? 'out';
mkdirSync(outDir, { recursive: true });
const g = gpu();
const c = cpu();
const stream = g.createStream();
const results: Record<string, unknown> = { device: g.status.name, command: 'node dist/gemv.mjs OUT (native/gpu-tests/gemv.sh)', checks: [] as unknown[], speed: [] as unknown[] };
const log = (msg: string): void => console.log(msg);

/** bf16 bits, uniform in ±scale (the engine's random linear weights) or standard normal-ish (sum of 4 uniforms). */
function bf16Block(n: number, seed: number, scale: number, normal = false): Uint16Array {
  const r = rng(seed);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = f32ToBf16(normal ? scale * (r() + r() + r() + r() - 2) * Math.sqrt(3) : scale * (2 * r() - 1));
  return out;
}
const BLOCK = 1 << 22;
/** A device buffer of `elems` bf16 values: one random block repeated (the host copy alike when asked). */
function tiled(elems: number, seed: number, scale: number, host: boolean): { dev: DeviceBuffer; host: Uint16Array | null } {
  const block = bf16Block(Math.min(BLOCK, elems), seed, scale);
  const dev = g.alloc(elems * 2);
  for (let off = 0; off < elems; off += block.length) {
    const n = Math.min(block.length, elems - off);
    g.copyToDevice(dev, block.subarray(0, n), { dstOffsetBytes: off * 2 });
  }
  let h: Uint16Array | null = null;
  if (host) {
    h = new Uint16Array(elems);
    for (let off = 0; off < elems; off += block.length) h.set(block.subarray(0, Math.min(block.length, elems - off)), off);
  }
  return { dev, host: h };
}
// ---- (1) correctness against the CPU reference
let failures = 0;
const CASES: { n: number; k: number; epilogue: GemvEpilogue; norm: boolean }[] = [
  { n: 37, k: 72, epilogue: 'store', norm: false },
  { n: 37, k: 72, epilogue: 'add', norm: true },
  { n: 37, k: 72, epilogue: 'siluPair', norm: true },
  { n: 1000, k: 16384, epilogue: 'store', norm: true },
  { n: 333, k: 2056, epilogue: 'add', norm: false },
  { n: 12288, k: 4096, epilogue: 'store', norm: true }, // 7B q/k/v with the input norm
  { n: 4096, k: 4096, epilogue: 'add', norm: false }, // 7B o + residual
  { n: 11008, k: 4096, epilogue: 'siluPair', norm: true }, // 7B gate/up + SiLU-and-mul
  { n: 4096, k: 11008, epilogue: 'add', norm: false }, // 7B down + residual
  { n: 5120, k: 13824, epilogue: 'add', norm: false }, // 13B down + residual
];
for (const tc of CASES) {
  const rows = tc.epilogue === 'siluPair' ? 2 * tc.n : tc.n;
  const w = tiled(rows * tc.k, 7 + tc.n, Math.sqrt(3 / tc.k), true);
  const x = bf16Block(tc.k, 11, 1, true);
  const nw = tc.norm ? bf16Block(tc.k, 13, 1) : null;
  const out0 = bf16Block(tc.n, 17, 1, true);
  const ref = Uint16Array.from(out0);
  c.decodeGemv({ dtype: 'bf16', n: tc.n, k: tc.k, epilogue: tc.epilogue, x, weight: w.host!, ...(nw ? { normWeight: nw } : {}), out: ref });
  const want = decode('bf16', ref);
  const dx = g.upload(x);
  const dnw = nw ? g.upload(nw) : null;
  // The L2 prefetch (of a buffer of this case's size) is a hint: its output must be the plain PDL run's, bit for bit.
  const prefetchTarget = g.alloc(rows * tc.k * 2);
  let pdlBits: Uint16Array | null = null;
  for (const [pdl, prefetch] of [[false, false], [true, false], [true, true]] as const) {
    const dout = g.upload(out0);
    // As a dependent of a kernel that writes x: PDL must still read x after that kernel.
    g.decodeGemv({ dtype: 'bf16', n: tc.n, k: tc.k, epilogue: tc.epilogue, x: dx, weight: w.dev, ...(dnw ? { normWeight: dnw } : {}), out: dout, pdl, ...(prefetch ? { l2Prefetch: prefetchTarget } : {}), stream });
    g.sync(stream);
    const got = new Uint16Array(tc.n);
    g.copyToHost(got, dout);
    const err = nmse(decode('bf16', got), want);
    const sameBits = !prefetch || (pdlBits !== null && got.every((v, i) => v === pdlBits![i]));
    if (pdl && !prefetch) pdlBits = got;
    const ok = err <= 1e-5 && sameBits;
    if (!ok) failures++;
    (results.checks as unknown[]).push({ ...tc, pdl, l2Prefetch: prefetch, nmse_vs_cpu: err, limit: 1e-5, ...(prefetch ? { same_bits_as_without: sameBits } : {}), ok });
    log(`check decodeGemv n=${tc.n} k=${tc.k} ${tc.epilogue}${tc.norm ? '+norm' : ''} pdl=${pdl}${prefetch ? ' l2Prefetch' : ''}: nmse ${err.toExponential(2)}${prefetch ? `, bits ${sameBits ? 'equal' : 'DIFFER'}` : ''} ${ok ? 'ok' : 'FAIL'}`);
    dout.free();
  }
  // A dependent chain: gemv (store) writes y, a PDL gemv reads it at once; both against the CPU.
  if (tc.epilogue === 'store' && tc.n === tc.k) {
    const y = g.alloc(tc.n * 2);
    const z = g.alloc(tc.n * 2);
    g.decodeGemv({ dtype: 'bf16', n: tc.n, k: tc.k, x: dx, weight: w.dev, out: y, stream });
    g.decodeGemv({ dtype: 'bf16', n: tc.n, k: tc.k, x: y, weight: w.dev, out: z, pdl: true, stream });
    g.sync(stream);
    const y1 = c.decodeGemv({ dtype: 'bf16', n: tc.n, k: tc.k, x, weight: w.host! }) as Uint16Array;
    const z1 = c.decodeGemv({ dtype: 'bf16', n: tc.n, k: tc.k, x: y1, weight: w.host! }) as Uint16Array;
    const got = new Uint16Array(tc.n);
    g.copyToHost(got, z);
    const err = nmse(decode('bf16', got), decode('bf16', z1));
    if (err > 1e-5) failures++;
    (results.checks as unknown[]).push({ chain: `gemv -> pdl gemv n=${tc.n}`, nmse_vs_cpu: err, ok: err <= 1e-5 });
    log(`check chain gemv -> pdl gemv n=${tc.n}: nmse ${err.toExponential(2)}`);
    y.free();
    z.free();
  }
  w.dev.free();
  prefetchTarget.free();
  dx.free();
  dnw?.free();
}
// rope with the KV write fused (the one-row decode's other fused launch): the same bits as rope
// then kvWrite on the GPU, padding slot skipped.
{
  const [numTokens, numHeads, numKvHeads, headDim, pageSize, numPages] = [3, 32, 8, 128, 16, 4];
  const q0 = bf16Block(numTokens * numHeads * headDim, 31, 1, true);
  const k0 = bf16Block(numTokens * numKvHeads * headDim, 32, 1, true);
  const cacheN = numPages * numKvHeads * pageSize * headDim;
  const value = g.upload(bf16Block(numTokens * numKvHeads * headDim, 33, 1, true));
  const positions = g.upload(Int32Array.of(5, 0, 40));
  const slotMapping = g.upload(Int32Array.of(5, -1, 40));
  const base = { dtype: 'bf16' as const, numTokens, numHeads, numKvHeads, headDim, positions, stream };
  const run = (fused: boolean) => {
    const t = { q: g.upload(q0), k: g.upload(k0), kCache: g.upload(new Uint16Array(cacheN)), vCache: g.upload(new Uint16Array(cacheN)) };
    const cache = { kCache: t.kCache, vCache: t.vCache, pageSize, numPages };
    if (fused) g.rope({ ...base, q: t.q, k: t.k, kvCache: { value, slotMapping, ...cache }, pdl: true });
    else {
      g.rope({ ...base, q: t.q, k: t.k });
      g.kvWrite({ dtype: 'bf16', cacheDtype: 'bf16', numTokens, numKvHeads, headDim, key: t.k, value, slotMapping, ...cache, stream });
    }
    g.sync(stream);
    const host = [t.q, t.k, t.kCache, t.vCache].map((b) => {
      const h = new Uint16Array(b.bytes / 2);
      g.copyToHost(h, b);
      b.free();
      return h;
    });
    return host;
  };
  const want = run(false);
  const got = run(true);
  let bad = 0;
  want.forEach((w, j) => w.forEach((x, i) => (bad += got[j][i] !== x ? 1 : 0)));
  const written = want[2].filter((x) => x !== 0).length;
  if (bad > 0 || written === 0) failures++;
  (results.checks as unknown[]).push({ rope_kv_cache_vs_rope_then_kv_write: true, mismatching_elements: bad, k_cache_elements_written: written, ok: bad === 0 && written > 0 });
  log(`check rope + KV write vs rope then kvWrite: ${bad} mismatching elements (${written} k-cache elements written)`);
  for (const b of [value, positions, slotMapping]) b.free();
}
// Paged decode with the split merged in its last blocks: the same bits as the merge kernel, twice
// in a row (the arrival counters must be back at zero), lengths inside one split and across many; and
// asked for on a second stream, which does not own the counters and takes the merge kernel instead.
{
  const [numHeads, numKvHeads, headDim, pageSize, partitionTokens] = [32, 8, 128, 16, 32];
  const lens = [300, 17, 129, 32, 33];
  const maxPages = Math.ceil(Math.max(...lens) / pageSize);
  const numPages = lens.length * maxPages;
  const tables = Int32Array.from({ length: lens.length * maxPages }, (_, i) => i);
  const cacheN = numPages * numKvHeads * pageSize * headDim;
  const args = {
    dtype: 'bf16' as const, kvDtype: 'bf16' as const, numSeqs: lens.length, numHeads, numKvHeads, headDim, pageSize, numPages, maxPagesPerSeq: maxPages, partitionTokens,
    q: g.upload(bf16Block(lens.length * numHeads * headDim, 41, 1, true)), kCache: g.upload(bf16Block(cacheN, 42, 1, true)), vCache: g.upload(bf16Block(cacheN, 43, 1, true)),
    blockTables: g.upload(tables), seqLens: g.upload(Int32Array.from(lens)), stream,
  };
  const other = g.createStream();
  const outs = ([[false, stream], [true, stream], [true, stream], [true, other]] as const).map(([fusedReduce, s]) => {
    const out = g.alloc(lens.length * numHeads * headDim * 2);
    g.pagedDecode({ ...args, out, fusedReduce, pdl: fusedReduce, stream: s });
    g.sync(s);
    const h = new Uint16Array(lens.length * numHeads * headDim);
    g.copyToHost(h, out);
    out.free();
    return h;
  });
  g.destroyStream(other);
  const bad = [1, 2, 3].map((j) => outs[0].filter((x, i) => outs[j][i] !== x).length);
  if (bad[0] + bad[1] + bad[2] > 0) failures++;
  (results.checks as unknown[]).push({ paged_decode_fused_merge_vs_merge_kernel: true, mismatching_elements_first_second_launch_other_stream: bad, ok: bad[0] + bad[1] + bad[2] === 0 });
  log(`check paged decode, merge fused vs merge kernel: ${bad.join(' / ')} mismatching elements (first / second launch / a second stream)`);
  for (const b of [args.q, args.kCache, args.vCache, args.blockTables, args.seqLens]) b.free();
}
// Paged decode with rope and the KV write folded in (ropeNew) against rope (writing the cache) then
// paged decode: output and both caches bit for bit, MHA and GQA, split merged or not.
for (const [numHeads, numKvHeads] of [[32, 32], [32, 8]]) {
  const [headDim, pageSize, partitionTokens] = [128, 16, 32];
  const lens = [300, 17, 129, 1];
  const maxPages = Math.ceil(Math.max(...lens) / pageSize);
  const numPages = lens.length * maxPages;
  const numSeqs = lens.length;
  const cacheN = numPages * numKvHeads * pageSize * headDim;
  const kc0 = bf16Block(cacheN, 51, 1, true);
  const vc0 = bf16Block(cacheN, 52, 1, true);
  const q0 = bf16Block(numSeqs * numHeads * headDim, 53, 1, true);
  const kNew0 = bf16Block(numSeqs * numKvHeads * headDim, 54, 1, true);
  const d = {
    tables: g.upload(Int32Array.from({ length: numSeqs * maxPages }, (_, i) => i)), lens: g.upload(Int32Array.from(lens)),
    positions: g.upload(Int32Array.from(lens, (l) => l - 1)), slots: g.upload(Int32Array.from(lens, (l, s) => s * maxPages * pageSize + l - 1)),
    vNew: g.upload(bf16Block(numSeqs * numKvHeads * headDim, 55, 1, true)),
  };
  const run = (fused: boolean, fusedReduce: boolean) => {
    const t = { q: g.upload(q0), k: g.upload(kNew0), kc: g.upload(kc0), vc: g.upload(vc0), out: g.alloc(numSeqs * numHeads * headDim * 2) };
    const base = {
      dtype: 'bf16' as const, kvDtype: 'bf16' as const, numSeqs, numHeads, numKvHeads, headDim, pageSize, numPages, maxPagesPerSeq: maxPages, partitionTokens,
      q: t.q, kCache: t.kc, vCache: t.vc, blockTables: d.tables, seqLens: d.lens, out: t.out, fusedReduce, stream,
    };
    if (fused) g.pagedDecode({ ...base, ropeNew: { kNew: t.k, vNew: d.vNew }, pdl: true });
    else {
      g.rope({ dtype: 'bf16', numTokens: numSeqs, numHeads, numKvHeads, headDim, positions: d.positions, q: t.q, k: t.k, kvCache: { value: d.vNew, slotMapping: d.slots, kCache: t.kc, vCache: t.vc, pageSize, numPages }, stream });
      g.pagedDecode(base);
    }
    g.sync(stream);
    const host = [t.out, t.kc, t.vc].map((b) => {
      const h = new Uint16Array(b.bytes / 2);
      g.copyToHost(h, b);
      return h;
    });
    for (const b of Object.values(t)) b.free();
    return host;
  };
  for (const fusedReduce of [false, true]) {
    const want = run(false, fusedReduce);
    const got = run(true, fusedReduce);
    const bad = want.map((w, j) => w.filter((x, i) => got[j][i] !== x).length);
    const ok = bad.every((b) => b === 0);
    if (!ok) failures++;
    (results.checks as unknown[]).push({ paged_decode_rope_new_vs_rope_then_decode: `${numHeads}/${numKvHeads} heads`, fusedReduce, mismatching_out_kcache_vcache: bad, ok });
    log(`check paged decode with rope folded in vs rope then decode, ${numHeads}/${numKvHeads} heads, fusedReduce ${fusedReduce}: ${bad.join(' / ')} mismatching (out / k cache / v cache)`);
  }
  for (const b of Object.values(d)) b.free();
}
results.check_failures = failures;

// ---- (2) speed against cuBLAS at m = 1
/** Median microseconds per call over graph replays of `calls` back-to-back calls (timing.ts). */
const timeCalls = (fn: (i: number) => void, calls: number): number => 1000 * timeGraphOn(g, stream, fn, calls, 10);
{
  const bytes = 2 ** 31;
  const a = g.alloc(bytes);
  const b = g.alloc(bytes);
  results.copy_bandwidth_tb_per_s = (2 * bytes) / (timeCalls(() => g.copy(b, a, bytes, stream), 5) * 1e-6) / 1e12;
  a.free();
  b.free();
  log(`copy bandwidth ${(results.copy_bandwidth_tb_per_s as number).toFixed(3)} TB/s (read + write)`);
}
const SHAPES = [
  { model: '7b', name: 'q/k/v', n: 12288, k: 4096, epilogue: 'store' as const, norm: true },
  { model: '7b', name: 'o', n: 4096, k: 4096, epilogue: 'add' as const, norm: false },
  { model: '7b', name: 'gate/up', n: 11008, k: 4096, epilogue: 'siluPair' as const, norm: true },
  { model: '7b', name: 'down', n: 4096, k: 11008, epilogue: 'add' as const, norm: false },
  { model: '13b', name: 'q/k/v', n: 15360, k: 5120, epilogue: 'store' as const, norm: true },
  { model: '13b', name: 'o', n: 5120, k: 5120, epilogue: 'add' as const, norm: false },
  { model: '13b', name: 'gate/up', n: 13824, k: 5120, epilogue: 'siluPair' as const, norm: true },
  { model: '13b', name: 'down', n: 5120, k: 13824, epilogue: 'add' as const, norm: false },
];
for (const s of SHAPES) {
  const rows = s.epilogue === 'siluPair' ? 2 * s.n : s.n;
  const wBytes = rows * s.k * 2;
  const copies = Math.max(2, Math.ceil(2 ** 28 / wBytes));
  const ws = Array.from({ length: copies }, (_, i) => tiled(rows * s.k, 100 + i, Math.sqrt(3 / s.k), false).dev);
  const x = g.upload(bf16Block(s.k, 3, 1, true));
  const nw = g.upload(bf16Block(s.k, 5, 1));
  const out = g.upload(bf16Block(rows, 9, 1, true));
  const calls = copies * Math.max(1, Math.round(40 / copies));
  const cublasUs = timeCalls((i) => g.gemm({ dtype: 'bf16', m: 1, n: rows, k: s.k, a: x, b: ws[i % copies], c: out, stream }), calls);
  const plain = (pdl: boolean) => timeCalls((i) => g.decodeGemv({ dtype: 'bf16', n: rows, k: s.k, x, weight: ws[i % copies], out, pdl, stream }), calls);
  const fused = (pdl: boolean) =>
    timeCalls((i) => g.decodeGemv({ dtype: 'bf16', n: s.n, k: s.k, epilogue: s.epilogue, x, weight: ws[i % copies], ...(s.norm ? { normWeight: nw } : {}), out, pdl, stream }), calls);
  const perSm = (blocksPerSm: number) => timeCalls((i) => g.decodeGemv({ dtype: 'bf16', n: rows, k: s.k, x, weight: ws[i % copies], out, blocksPerSm, pdl: true, stream }), calls);
  const us = { cublas: cublasUs, gemv: plain(false), gemv_pdl: plain(true), fused: fused(false), fused_pdl: fused(true), gemv_pdl_1_per_sm: perSm(1), gemv_pdl_2_per_sm: perSm(2), gemv_pdl_4_per_sm: perSm(4) };
  const tbs = Object.fromEntries(Object.entries(us).map(([k, v]) => [k, wBytes / (v * 1e-6) / 1e12]));
  const row = { ...s, weight_bytes: wBytes, copies, calls, us, weight_tb_per_s: tbs, gemv_over_cublas_time: us.gemv / us.cublas, fused_pdl_over_cublas_time: us.fused_pdl / us.cublas };
  (results.speed as unknown[]).push(row);
  log(`${s.model} ${s.name} [${rows} x ${s.k}]: us ${JSON.stringify(Object.fromEntries(Object.entries(us).map(([k, v]) => [k, Math.round(v * 10) / 10])))} TB/s ${JSON.stringify(Object.fromEntries(Object.entries(tbs).map(([k, v]) => [k, Math.round(v * 100) / 100])))}`);
  for (const w of ws) w.free();
  x.free();
  nw.free();
  out.free();
}
writeFileSync(join(outDir, 'gemv.json'), JSON.stringify(results, null, 2) + '\n');
log(`wrote gemv.json (${failures} check failures)`);
process.exitCode = failures > 0 ? 1 : 0;
