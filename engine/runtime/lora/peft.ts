// PEFT's on-disk LoRA format: a folder with adapter_config.json (peft_type LORA, r, lora_alpha,
// target_modules, use_rslora) and adapter_model.safetensors whose keys are
// `base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight` ([r, in]) and `...lora_B.weight`
// ([out, r]). The folder's version is the sha256 of both files' bytes.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bf16ToF32, f16ToF32, f32ToBf16 } from '../../../native/index.js';
import type { ModelConfig } from '../model-config.js';
import { readSafetensorsHeader, readTensorData, writeSafetensors, type StEntry } from '../safetensors.js';
import {
  checkRank, LORA_MODULES, LoraError, loraScale, moduleDims, modulePath, pairKey, type LoraAdapter, type LoraModule, type LoraPair,
} from './adapter.js';

export const PEFT_CONFIG_FILE = 'adapter_config.json';
export const PEFT_WEIGHTS_FILE = 'adapter_model.safetensors';

export const peftKey = (layer: number, module: LoraModule, ab: 'A' | 'B'): string =>
  `base_model.model.model.layers.${layer}.${modulePath(module)}.lora_${ab}.weight`;

/** sha256 (hex) of adapter_config.json then adapter_model.safetensors, each preceded by its byte length. */
export function peftFolderSha256(dir: string, name: string): string {
  const h = createHash('sha256');
  for (const f of [PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE]) {
    const path = join(dir, f);
    if (!existsSync(path)) throw new LoraError('lora_format', name, `${path} is missing`);
    const bytes = readFileSync(path);
    h.update(`${f}:${bytes.length}:`);
    h.update(bytes);
  }
  return h.digest('hex');
}

function toF32(data: Uint16Array | Float32Array, dtype: 'BF16' | 'F16' | 'F32'): Float32Array {
  if (dtype === 'F32') return data as Float32Array;
  const conv = dtype === 'BF16' ? bf16ToF32 : f16ToF32;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = conv(data[i]);
  return out;
}

/** Reads a PEFT LoRA folder for a base model of shape `config`; every problem names the adapter. */
export function readPeftFolder(dir: string, name: string, config: ModelConfig): LoraAdapter {
  const bad = (message: string): never => {
    throw new LoraError('lora_format', name, `${dir}: ${message}`);
  };
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(join(dir, PEFT_CONFIG_FILE), 'utf8'));
  } catch (e) {
    return bad(`${PEFT_CONFIG_FILE}: ${(e as Error).message}`);
  }
  if (json.peft_type !== undefined && json.peft_type !== 'LORA') bad(`peft_type = ${JSON.stringify(json.peft_type)}: allowed: LORA`);
  const rank = json.r;
  const alpha = json.lora_alpha ?? rank;
  if (typeof rank !== 'number' || typeof alpha !== 'number') return bad(`r = ${JSON.stringify(rank)}, lora_alpha = ${JSON.stringify(alpha)}: must be numbers`);
  checkRank(name, rank);
  for (const key of ['rank_pattern', 'alpha_pattern'] as const) {
    const v = json[key];
    if (v !== undefined && v !== null && Object.keys(v as object).length > 0) bad(`${key} is not supported (one rank and alpha per adapter)`);
  }
  if (json.fan_in_fan_out === true) bad('fan_in_fan_out = true: not supported (Llama linear layers)');
  if (json.bias !== undefined && json.bias !== 'none') bad(`bias = ${JSON.stringify(json.bias)}: allowed: none`);
  const rawTargets = json.target_modules;
  const list = typeof rawTargets === 'string' ? [rawTargets] : Array.isArray(rawTargets) ? (rawTargets as unknown[]) : bad('target_modules is missing');
  const targets: LoraModule[] = [];
  for (const t of list) {
    if (!LORA_MODULES.includes(t as LoraModule)) bad(`target_modules has ${JSON.stringify(t)}: allowed: ${LORA_MODULES.join(', ')}`);
    if (!targets.includes(t as LoraModule)) targets.push(t as LoraModule);
  }
  targets.sort((a, b) => LORA_MODULES.indexOf(a) - LORA_MODULES.indexOf(b));
  const useRslora = json.use_rslora === true;
  const file = join(dir, PEFT_WEIGHTS_FILE);
  if (!existsSync(file)) bad(`${PEFT_WEIGHTS_FILE} is missing`);
  const { tensors } = readSafetensorsHeader(file);
  const pairs = new Map<string, LoraPair>();
  for (let l = 0; l < config.numLayers; l++) {
    for (const m of targets) {
      const { inDim, outDim } = moduleDims(config, m);
      const read = (ab: 'A' | 'B', shape: number[]): Float32Array => {
        const key = peftKey(l, m, ab);
        const info = tensors.get(key) ?? tensors.get(key.replace('.weight', '.default.weight'));
        if (info === undefined) return bad(`tensor ${key} is missing`);
        if (JSON.stringify(info.shape) !== JSON.stringify(shape)) bad(`${key} has shape ${JSON.stringify(info.shape)}, the base model and r = ${rank} need ${JSON.stringify(shape)}`);
        return toF32(readTensorData(file, info), info.dtype);
      };
      pairs.set(pairKey(l, m), { a: read('A', [rank, inDim]), b: read('B', [outDim, rank]) });
    }
  }
  return { name, rank, alpha, useRslora, scale: loraScale(alpha, rank, useRslora), targets, numLayers: config.numLayers, pairs };
}

/** Writes the adapter as a PEFT folder that `PeftModel.from_pretrained` loads (bf16 or f32 tensors). */
export function writePeftFolder(dir: string, adapter: LoraAdapter, dtype: 'bf16' | 'f32', baseModel = 'stratos-random'): void {
  mkdirSync(dir, { recursive: true });
  const config = {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: baseModel, r: adapter.rank, lora_alpha: adapter.alpha,
    target_modules: adapter.targets, lora_dropout: 0, bias: 'none', fan_in_fan_out: false, use_rslora: adapter.useRslora,
    init_lora_weights: true, inference_mode: true, rank_pattern: {}, alpha_pattern: {}, modules_to_save: null,
  };
  writeFileSync(join(dir, PEFT_CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');
  const entries: StEntry[] = [];
  const data = (x: Float32Array) => (): Float32Array | Uint16Array => (dtype === 'f32' ? x : Uint16Array.from(x, (v) => f32ToBf16(v)));
  for (let l = 0; l < adapter.numLayers; l++) {
    for (const m of adapter.targets) {
      const p = adapter.pairs.get(pairKey(l, m))!;
      const { inDim, outDim } = { inDim: p.a.length / adapter.rank, outDim: p.b.length / adapter.rank };
      const st = dtype === 'f32' ? 'F32' : 'BF16';
      entries.push({ name: peftKey(l, m, 'A'), dtype: st, shape: [adapter.rank, inDim], data: data(p.a) });
      entries.push({ name: peftKey(l, m, 'B'), dtype: st, shape: [outDim, adapter.rank], data: data(p.b) });
    }
  }
  writeSafetensors(join(dir, PEFT_WEIGHTS_FILE), entries, { format: 'pt' });
}
