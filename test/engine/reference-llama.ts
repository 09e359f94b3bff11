// A deliberately plain Llama forward for tests: f64 arithmetic, no KV cache (the whole sequence
// is recomputed), no batching. It shares no code with engine/runtime/llama.ts.
import type { ModelWeights } from '../../engine/runtime/weights.js';

type Mat = Float64Array;

export class ReferenceLlama {
  private readonly w = new Map<string, Mat>();

  constructor(readonly weights: ModelWeights) {
    for (const s of weights.specs) this.w.set(s.name, Float64Array.from(weights.tensor(s.name, 'f32') as Float32Array));
  }

  private get(name: string): Mat {
    return this.w.get(name)!;
  }

  /** Logits [tokens.length, vocab] of a causal pass over `tokens` (positions 0..n-1). */
  logits(tokens: readonly number[]): Float64Array[] {
    const c = this.weights.config;
    const H = c.hiddenSize;
    const D = c.headDim;
    const embed = this.get('model.embed_tokens.weight');
    let h: Float64Array[] = tokens.map((t) => embed.slice(t * H, (t + 1) * H));
    const rmsnorm = (x: Float64Array, w: Mat): Float64Array => {
      let ss = 0;
      for (const v of x) ss += v * v;
      const inv = 1 / Math.sqrt(ss / x.length + c.rmsNormEps);
      return x.map((v, i) => v * inv * w[i]);
    };
    const linear = (x: Float64Array, w: Mat, outDim: number): Float64Array => {
      const inDim = x.length;
      const out = new Float64Array(outDim);
      for (let o = 0; o < outDim; o++) {
        let s = 0;
        for (let i = 0; i < inDim; i++) s += x[i] * w[o * inDim + i];
        out[o] = s;
      }
      return out;
    };
    const rope = (x: Float64Array, numHeads: number, pos: number): void => {
      const half = D / 2;
      for (let hd = 0; hd < numHeads; hd++) {
        for (let i = 0; i < half; i++) {
          const freq = Math.pow(c.ropeTheta, (-2 * i) / D);
          const a = pos * freq;
          const x0 = x[hd * D + i];
          const x1 = x[hd * D + i + half];
          x[hd * D + i] = x0 * Math.cos(a) - x1 * Math.sin(a);
          x[hd * D + i + half] = x1 * Math.cos(a) + x0 * Math.sin(a);
        }
      }
    };
    const qDim = c.numHeads * D;
    const kvDim = c.numKvHeads * D;
    const group = c.numHeads / c.numKvHeads;
    for (let l = 0; l < c.numLayers; l++) {
      const p = (part: string): Mat => this.get(`model.layers.${l}.${part}.weight`);
      const xs = h.map((x) => rmsnorm(x, p('input_layernorm')));
      const qs = xs.map((x, pos) => {
        const q = linear(x, p('self_attn.q_proj'), qDim);
        rope(q, c.numHeads, pos);
        return q;
      });
      const ks = xs.map((x, pos) => {
        const k = linear(x, p('self_attn.k_proj'), kvDim);
        rope(k, c.numKvHeads, pos);
        return k;
      });
      const vs = xs.map((x) => linear(x, p('self_attn.v_proj'), kvDim));
      const attn = qs.map((q, i) => {
        const out = new Float64Array(qDim);
        for (let hd = 0; hd < c.numHeads; hd++) {
          const kh = Math.floor(hd / group);
          const scores: number[] = [];
          for (let j = 0; j <= i; j++) {
            let s = 0;
            for (let d = 0; d < D; d++) s += q[hd * D + d] * ks[j][kh * D + d];
            scores.push(s / Math.sqrt(D));
          }
          const m = Math.max(...scores);
          const e = scores.map((s) => Math.exp(s - m));
          const z = e.reduce((a, b) => a + b, 0);
          for (let j = 0; j <= i; j++) for (let d = 0; d < D; d++) out[hd * D + d] += (e[j] / z) * vs[j][kh * D + d];
        }
        return out;
      });
      h = h.map((x, i) => {
        const o = linear(attn[i], p('self_attn.o_proj'), H);
        return x.map((v, j) => v + o[j]);
      });
      h = h.map((x) => {
        const y = rmsnorm(x, p('post_attention_layernorm'));
        const g = linear(y, p('mlp.gate_proj'), c.ffnSize);
        const u = linear(y, p('mlp.up_proj'), c.ffnSize);
        const a = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]);
        const d = linear(a, p('mlp.down_proj'), H);
        return x.map((v, j) => v + d[j]);
      });
    }
    return h.map((x) => linear(rmsnorm(x, this.get('model.norm.weight')), this.get('lm_head.weight'), c.vocabSize));
  }

  /** Greedy continuation of `prompt` by `n` tokens (recomputing everything each token). */
  greedy(prompt: readonly number[], n: number): number[] {
    const tokens = [...prompt];
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const rows = this.logits(tokens);
      const last = rows[rows.length - 1];
      let best = 0;
      for (let v = 1; v < last.length; v++) if (last[v] > last[best]) best = v;
      out.push(best);
      tokens.push(best);
    }
    return out;
  }
}
