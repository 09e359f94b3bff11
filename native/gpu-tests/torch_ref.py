"""Independent references on the GPU through PyTorch (never part of the product).

Reads WORK_DIR/manifest.json written by run.ts (inputs and our GPU outputs as raw files), computes
each case with torch in float32 from the same inputs, and writes WORK_DIR/torch.json with the
normalized MSE of ours against torch, torch.matmul timings (CUDA-graph replay, the same method as
ours) and torch's SDPA time for the prefill shape.
"""
import json
import sys
import traceback

import numpy as np
import torch

work = sys.argv[1]
man = json.load(open(f"{work}/manifest.json"))
dev = torch.device("cuda")
out = {"comparisons": [], "errors": []}


def load(path, dtype):
    return np.fromfile(path, dtype=dtype)


def bf16(path, shape=None):
    t = torch.from_numpy(load(path, np.uint16).astype(np.int16)).view(torch.bfloat16).to(dev)
    return t.reshape(shape) if shape else t


def fp8(path):
    return torch.from_numpy(load(path, np.uint8)).view(torch.float8_e4m3fn).to(dev)


def nmse(ours, ref):
    ours = ours.float().flatten()
    ref = ref.float().flatten()
    if not torch.isfinite(ours).all():
        return float("inf")
    return float(((ours - ref) ** 2).sum() / (ref ** 2).sum().clamp_min(1e-30))


def gather_kv(cache, bt, s, length, page, nkv, d):
    # cache [numPages, nkv, page, d] -> [length, nkv, d]
    pages = bt[s][: (length + page - 1) // page].long()
    kv = cache[pages]  # [p, nkv, page, d]
    return kv.permute(0, 2, 1, 3).reshape(-1, nkv, d)[:length]


for case in man["cases"]:
    try:
        kind = case["kind"]
        if kind == "decode":
            H, KV, D, P = case["numHeads"], case["numKvHeads"], case["headDim"], case["pageSize"]
            lens = case["seqLens"]
            S = len(lens)
            q = bf16(case["q"], (S, H, D)).float()
            if case["kvDtype"] == "fp8e4m3":
                kc = fp8(case["kCache"]).float() * case["scale"]
                vc = fp8(case["vCache"]).float() * case["scale"]
            else:
                kc, vc = bf16(case["kCache"]).float(), bf16(case["vCache"]).float()
            kc = kc.reshape(case["numPages"], KV, P, D)
            vc = vc.reshape(case["numPages"], KV, P, D)
            bt = torch.from_numpy(load(case["blockTables"], np.int32)).to(dev).reshape(S, -1)
            ours = bf16(case["out"], (S, H, D))
            ref = torch.zeros(S, H, D, device=dev)
            for s, L in enumerate(lens):
                if L == 0:
                    continue
                k = gather_kv(kc, bt, s, L, P, KV, D).repeat_interleave(H // KV, dim=1)  # [L, H, D]
                v = gather_kv(vc, bt, s, L, P, KV, D).repeat_interleave(H // KV, dim=1)
                ref[s] = torch.nn.functional.scaled_dot_product_attention(
                    q[s][:, None, :], k.permute(1, 0, 2), v.permute(1, 0, 2))[:, 0, :]
            out["comparisons"].append({"kind": "decode", "name": f"decode {case['kvDtype']} page={P} heads={H}/{KV} lens={lens}", "nmse": nmse(ours, ref)})
        elif kind == "prefill":
            H, KV, D, P = case["numHeads"], case["numKvHeads"], case["headDim"], case["pageSize"]
            ql, cl = case["qLens"], case["ctxLens"]
            T = sum(ql)
            q = bf16(case["q"], (T, H, D)).float()
            kc = bf16(case["kCache"]).float().reshape(case["numPages"], KV, P, D)
            vc = bf16(case["vCache"]).float().reshape(case["numPages"], KV, P, D)
            bt = torch.from_numpy(load(case["blockTables"], np.int32)).to(dev).reshape(len(ql), -1)
            ours = bf16(case["out"], (T, H, D))
            ref = torch.zeros(T, H, D, device=dev)
            start = 0
            for s, (n, c) in enumerate(zip(ql, cl)):
                if n == 0:
                    continue
                L = n + c
                k = gather_kv(kc, bt, s, L, P, KV, D).repeat_interleave(H // KV, dim=1).permute(1, 0, 2)
                v = gather_kv(vc, bt, s, L, P, KV, D).repeat_interleave(H // KV, dim=1).permute(1, 0, 2)
                qq = q[start:start + n].permute(1, 0, 2)  # [H, n, D]
                pos = torch.arange(n, device=dev)[:, None] + c
                mask = torch.arange(L, device=dev)[None, :] <= pos
                ref[start:start + n] = torch.nn.functional.scaled_dot_product_attention(qq, k, v, attn_mask=mask).permute(1, 0, 2)
                start += n
            out["comparisons"].append({"kind": "prefill", "name": f"prefill q={ql} ctx={cl} heads={H}/{KV} d={D} page={P}", "nmse": nmse(ours, ref)})
        elif kind == "gemm":
            m, n, k = case["m"], case["n"], case["k"]
            a = bf16(case["a"], (m, k))
            b = bf16(case["b"], (n, k))
            ref = a.float() @ b.float().t()
            out["comparisons"].append({"kind": "gemm", "name": f"gemm bf16 {m}x{n}x{k} (vs f32 matmul of the same inputs)", "nmse": nmse(bf16(case["out"], (m, n)), ref)})
            out["comparisons"].append({"kind": "gemm", "name": f"gemm bf16 {m}x{n}x{k} (vs torch.matmul bf16)", "nmse": nmse(bf16(case["out"], (m, n)), a @ b.t())})
        elif kind == "rmsnorm":
            T, Hd, eps = case["numTokens"], case["hidden"], case["eps"]
            x = bf16(case["x"], (T, Hd)).float()
            r = bf16(case["residual"], (T, Hd)).float()
            w = bf16(case["weight"], (Hd,)).float()
            h = (x + r).bfloat16().float()
            ref = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps) * w
            out["comparisons"].append({"kind": "rmsnorm", "name": f"rmsnorm+residual bf16 {T}x{Hd}", "nmse": nmse(bf16(case["out"], (T, Hd)), ref)})
        elif kind == "rope":
            T, H, KV, D = case["numTokens"], case["numHeads"], case["numKvHeads"], case["headDim"]
            pos = torch.from_numpy(load(case["positions"], np.int32)).to(dev).double()
            inv = case["theta"] ** (-torch.arange(0, D, 2, device=dev, dtype=torch.float64) / D)
            ang = pos[:, None] * inv[None, :]
            cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]

            def rot(x):
                x1, x2 = x[..., : D // 2], x[..., D // 2:]
                return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)

            rq = rot(bf16(case["q"], (T, H, D)).double())
            rk = rot(bf16(case["k"], (T, KV, D)).double())
            err = max(nmse(bf16(case["outQ"], (T, H, D)), rq), nmse(bf16(case["outK"], (T, KV, D)), rk))
            out["comparisons"].append({"kind": "rope", "name": f"rope neox bf16 {T} tokens {H}/{KV} heads", "nmse": err})
        elif kind == "sampling":
            V = case["vocab"]
            x = torch.from_numpy(load(case["logits"], np.float32)).to(dev).double() / case["temperature"]
            counts = torch.from_numpy(load(case["counts"], np.float64)).to(dev)
            probs = torch.softmax(x, -1)
            sp, si = probs.sort(descending=True)
            keep = torch.zeros(V, dtype=torch.bool, device=dev)
            k = case["topK"]
            sp_k = sp[:k] / sp[:k].sum()
            cum = sp_k.cumsum(0)
            n_keep = int((cum < case["topP"]).sum().item()) + 1  # smallest prefix reaching top-p
            keep[si[:n_keep]] = True
            ref = torch.where(keep, probs, torch.zeros_like(probs))
            ref = ref / ref.sum()
            emp = counts / counts.sum()
            tv = float((emp - ref).abs().sum() / 2)
            outside = float(counts[~keep].sum())
            out["comparisons"].append({"kind": "sampling", "name": f"sampling T={case['temperature']} top-k {k} top-p {case['topP']} ({int(counts.sum())} draws)", "nmse": 0.0, "tv": tv, "outside": outside, "keptTorch": n_keep})
    except Exception:
        out["errors"].append(traceback.format_exc())


def graph_time(fn, per_graph, reps=15, warm_ms=0.0):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(per_graph):
            fn()
    g.replay()
    torch.cuda.synchronize()
    warmed = 0.0  # replay for about warm_ms first (as run.ts does), so clocks settle
    for _ in range(1000):
        if warmed >= warm_ms:
            break
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        g.replay()
        e1.record()
        e1.synchronize()
        warmed += e0.elapsed_time(e1)
    times = []
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        g.replay()
        e1.record()
        e1.synchronize()
        times.append(e0.elapsed_time(e1) / per_graph)
    times.sort()
    return times[len(times) // 2]


try:
    out["gemmTimes"] = []
    kept = []
    for m, n, k in man["gemmShapes"]:
        a = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        b = (torch.rand(n, k, device=dev) * 0.0078 + 0.0078).to(torch.bfloat16)
        fn = (lambda a, b: lambda: torch.matmul(a, b.t()))(a, b)
        warm = man.get("gemmWarmMs", 0) if m >= 2048 else 0
        ms = graph_time(fn, 5 if m >= 2048 else 50, warm_ms=warm)
        rec = {"m": m, "n": n, "k": k, "ms": ms, "tflops": 2 * m * n * k / (ms / 1e3) / 1e12}
        out["gemmTimes"].append(rec)
        if m == 8192:
            out["torch8192Tflops"] = 2 * m * n * k / (ms / 1e3) / 1e12
        print(f"torch.matmul bf16 {m}x{n}x{k}: {ms * 1e3:.1f} us")
        if m >= 2048:
            rec["repeatsMs"] = []
            kept.append((rec, fn))
        else:
            del a, b
    # Repeats of the large shapes, interleaved across shapes as run.ts does for ours.
    for _ in range(man.get("gemmRepeats", 3)):
        for rec, fn in kept:
            rec["repeatsMs"].append(graph_time(fn, 5, warm_ms=man.get("gemmWarmMs", 0)))
    for rec, _ in kept:
        print(f"torch.matmul bf16 {rec['m']}x{rec['n']}x{rec['k']} repeats: " + ", ".join(f"{v * 1e3:.1f}" for v in rec["repeatsMs"]) + " us")
    del kept
    nbytes = 2 * 1024 ** 3
    src = torch.ones(nbytes, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    ms = graph_time(lambda: dst.copy_(src), 5)
    out["torchCopyBytesPerS"] = 2 * nbytes / (ms / 1e3)
    print(f"torch copy_ 2 GiB: {out['torchCopyBytesPerS'] / 1e12:.3f} TB/s (read + write)")
    del src, dst
    T, H, D = man["prefill"]["tokens"], man["prefill"]["numHeads"], man["prefill"]["headDim"]
    q = torch.randn(1, H, T, D, device=dev, dtype=torch.bfloat16)
    k = torch.randn(1, H, T, D, device=dev, dtype=torch.bfloat16)
    v = torch.randn(1, H, T, D, device=dev, dtype=torch.bfloat16)
    out["sdpaMs"] = graph_time(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True), 10)
    print(f"torch SDPA causal {T} tokens {H}x{D}: {out['sdpaMs'] * 1e3:.1f} us")
except Exception:
    out["errors"].append(traceback.format_exc())

for c in out["comparisons"]:
    print(f"{c['name']}: nmse {c['nmse']:.3e}" + (f" tv {c['tv']:.4f} outside {c['outside']}" if "tv" in c else ""))
for e in out["errors"]:
    print("ERROR", e)
json.dump(out, open(f"{work}/torch.json", "w"), indent=1)
