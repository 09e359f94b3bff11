"""Hugging Face transformers as an independent reference for the engine's logits (GPU machine only).

Usage: python3 hf_reference.py WORK_DIR OUT_DIR {tiny|7b|lora-tiny|lora-7b}
tiny: loads WORK_DIR/tiny (config.json + model.safetensors written by the engine) in bf16 and f32.
7b:   rebuilds the engine's seeded random Llama-2-7B weights from WORK_DIR/pool.f32 and the
      manifest (element i of a tensor = bf16(offset + scale * pool[(start + i) mod P]) in f32
      arithmetic), so no 13 GB checkpoint is written.
lora-tiny / lora-7b: the same base model plus the engine's PEFT adapter folder through peft
      (PeftModel.from_pretrained), unmerged and merged (merge_and_unload), against the engine's
      LoRA logits (gpu-check/run5.ts).
For each run the engine saved (prompt, its greedy tokens, its logits for the prompt's last token
and every decode step), transformers is fed the same tokens (teacher forcing) and its logits are
compared; it also decodes greedily on its own to see how many tokens agree.
"""
import json
import sys
import time

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

work, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
torch.backends.cuda.matmul.allow_tf32 = False


def compare(name, model, label, results):
    meta = json.load(open(f"{work}/{name}.json"))
    vocab, steps, prompt, tokens = meta["vocab"], meta["steps"], meta["prompt"], meta["tokens"]
    ours = np.fromfile(f"{work}/{name}.logits.f32", dtype=np.float32).reshape(steps + 1, vocab)
    seq = prompt + tokens[:-1]
    with torch.no_grad():
        logits = model(torch.tensor([seq], device="cuda")).logits[0].float()
    ref = logits[len(prompt) - 1 :].cpu().numpy()
    diff = np.abs(ours - ref)
    # HF greedy on its own (no cache; recomputes the sequence each token).
    hf_tokens, cur = [], list(prompt)
    with torch.no_grad():
        for _ in range(steps + 1):
            nxt = int(model(torch.tensor([cur], device="cuda")).logits[0, -1].float().argmax())
            hf_tokens.append(nxt)
            cur.append(nxt)
    agree = next((i for i, (a, b) in enumerate(zip(tokens, hf_tokens)) if a != b), len(tokens))
    results[label] = {
        "steps_compared": steps + 1,
        "max_abs_error": float(diff.max()),
        "mean_abs_error": float(diff.mean()),
        "max_abs_logit": float(np.abs(ref).max()),
        "relative_error_max_abs_over_max_logit": float(diff.max() / np.abs(ref).max()),
        "rel_l2_error": float(np.linalg.norm(ours - ref) / np.linalg.norm(ref)),
        "teacher_forced_argmax_agreement": float(np.mean(ours.argmax(1) == ref.argmax(1))),
        "greedy_tokens_agree_first_n": agree,
        "greedy_tokens_ours": tokens,
        "greedy_tokens_hf": hf_tokens,
    }
    print(label, {k: v for k, v in results[label].items() if not k.startswith("greedy_tokens_")}, "agree", agree, flush=True)


def compare_models(name, a, b, label, results):
    """transformers bf16 against transformers f32 on the same tokens: the error bf16 itself costs."""
    meta = json.load(open(f"{work}/{name}.json"))
    seq = meta["prompt"] + meta["tokens"][:-1]
    with torch.no_grad():
        ids = torch.tensor([seq], device="cuda")
        la = a(ids).logits[0].float()[len(meta["prompt"]) - 1 :]
        lb = b(ids).logits[0].float()[len(meta["prompt"]) - 1 :]
    d = (la - lb).abs()
    results[label] = {
        "max_abs_error": float(d.max()),
        "relative_error_max_abs_over_max_logit": float(d.max() / lb.abs().max()),
        "rel_l2_error": float((la - lb).norm() / lb.norm()),
    }
    print(label, results[label], flush=True)


def load_pretrained(path, dtype):
    try:
        return LlamaForCausalLM.from_pretrained(path, dtype=dtype).cuda().eval()
    except TypeError:
        return LlamaForCausalLM.from_pretrained(path, torch_dtype=dtype).cuda().eval()


def build_from_pool():
    m = json.load(open(f"{work}/llama2-7b.manifest.json"))
    c = m["config"]
    cfg = LlamaConfig(
        hidden_size=c["hiddenSize"], intermediate_size=c["ffnSize"], num_hidden_layers=c["numLayers"],
        num_attention_heads=c["numHeads"], num_key_value_heads=c["numKvHeads"], head_dim=c["headDim"],
        vocab_size=c["vocabSize"], rms_norm_eps=c["rmsNormEps"], rope_theta=c["ropeTheta"],
        max_position_embeddings=c["maxPositionEmbeddings"], tie_word_embeddings=False,
    )
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    model = model.to_empty(device="cuda")
    torch.set_default_dtype(torch.float32)
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    model.model.rotary_emb = LlamaRotaryEmbedding(config=cfg, device="cuda")
    pool = torch.from_numpy(np.fromfile(f"{work}/pool.f32", dtype=np.float32)).cuda()
    P = m["poolSize"]
    params = dict(model.named_parameters())
    assert set(params) == {t["name"] for t in m["tensors"]}, "manifest and model disagree on tensor names"
    with torch.no_grad():
        for t in m["tensors"]:
            n = int(np.prod(t["shape"]))
            idx = (torch.arange(n, device="cuda", dtype=torch.int64) + t["start"]) % P
            v = torch.tensor(t["scale"], dtype=torch.float32) * pool[idx] + torch.tensor(t["offset"], dtype=torch.float32)
            params[t["name"]].copy_(v.to(torch.bfloat16).view(t["shape"]))
    return model.eval()


def lora_compare(name, make_base, tag, results):
    """Our LoRA logits against transformers + peft (unmerged and merged), bf16 and f32."""
    from peft import PeftModel
    import peft
    results["peft"] = peft.__version__
    meta = json.load(open(f"{work}/{name}.json"))
    adapter_dir = f"{work}/{meta['adapter']}"
    compare(name, make_base(torch.bfloat16), f"{tag}_ours_vs_hf_base_without_adapter_bf16", results)
    for dtype, label in [(torch.bfloat16, "bf16"), (torch.float32, "f32")]:
        model = PeftModel.from_pretrained(make_base(dtype), adapter_dir).eval()
        compare(name, model, f"{tag}_ours_vs_hf_peft_unmerged_{label}", results)
        merged = model.merge_and_unload().eval()
        compare(name, merged, f"{tag}_ours_vs_hf_peft_merged_{label}", results)
        del model, merged
        torch.cuda.empty_cache()


results = {"torch": torch.__version__}
try:
    import transformers
    results["transformers"] = transformers.__version__
except Exception:
    pass
t0 = time.time()
if mode == "tiny":
    bf = load_pretrained(f"{work}/tiny", torch.bfloat16)
    compare("tiny", bf, "tiny_gpu_bf16_vs_hf_bf16", results)
    f32 = load_pretrained(f"{work}/tiny", torch.float32)
    compare("tiny", f32, "tiny_gpu_bf16_vs_hf_f32", results)
    compare("tiny_cpu_f32", f32, "tiny_cpu_f32_vs_hf_f32", results)
    compare("tiny_cpu_f32", bf, "tiny_cpu_f32_vs_hf_bf16", results)
    compare_models("tiny", bf, f32, "tiny_hf_bf16_vs_hf_f32", results)
elif mode == "lora-tiny":
    lora_compare("tiny_lora", lambda dt: load_pretrained(f"{work}/tiny", dt), "tiny_lora", results)
elif mode == "lora-7b":
    lora_compare("llama2-7b_lora", lambda dt: build_from_pool().to(dt), "llama2_7b_lora", results)
else:
    model = build_from_pool()
    results["build_s"] = time.time() - t0
    compare("llama2-7b", model, "llama2_7b_gpu_bf16_vs_hf_bf16", results)
    ref32 = build_from_pool().float()
    compare("llama2-7b", ref32, "llama2_7b_gpu_bf16_vs_hf_f32", results)
    compare_models("llama2-7b", model, ref32, "llama2_7b_hf_bf16_vs_hf_f32", results)
results["seconds"] = time.time() - t0
json.dump(results, open(f"{out}/hf-compare-{mode}.json", "w"), indent=2)
