// Adapters registered per tenant, each with a sha256 version fixed at registration. `load` is what
// the runner calls when the policy's LoRA cache loads an adapter into a GPU slot: a PEFT folder is
// read and hashed again, and a hash that differs from the registered version is a LoraError
// naming the adapter (the files changed since registration: never served silently).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../model-config.js';
import { adapterContentSha256, LoraError, randomAdapter, type LoraAdapter, type LoraModule, type RandomAdapterSpec } from './adapter.js';
import { PEFT_CONFIG_FILE, peftFolderSha256, readPeftFolder } from './peft.js';

export type AdapterSource = { readonly kind: 'peft'; readonly dir: string } | { readonly kind: 'random'; readonly spec: RandomAdapterSpec };

interface Entry {
  readonly name: string;
  readonly tenant: string;
  readonly source: AdapterSource;
  readonly sha256: string;
  readonly rank: number;
  readonly targets: readonly LoraModule[];
  /** Random adapters are generated once at registration and kept (nothing on disk can change). */
  readonly cached: LoraAdapter | null;
}

export interface RegisteredAdapter {
  readonly name: string;
  readonly tenant: string;
  readonly sha256: string;
  readonly rank: number;
  readonly targets: readonly LoraModule[];
  readonly source: 'peft' | 'random';
}

export class LoraRegistry {
  private readonly entries = new Map<string, Entry>();
  numLoads = 0;

  constructor(readonly config: ModelConfig) {}

  /**
   * Registers an adapter for a tenant. `sha256`, when given, is the version the caller expects
   * (checked now and at every load); else the version is the content's hash now.
   */
  register(name: string, tenant: string, source: AdapterSource, sha256?: string): RegisteredAdapter {
    if (this.entries.has(name)) throw new LoraError('lora_unknown', name, `registered twice (tenant ${this.entries.get(name)!.tenant})`);
    let entry: Entry;
    if (source.kind === 'peft') {
      const version = peftFolderSha256(source.dir, name);
      if (sha256 !== undefined && sha256 !== version) throw versionError(name, sha256, version, source.dir);
      const adapter = readPeftFolder(source.dir, name, this.config);
      entry = { name, tenant, source, sha256: version, rank: adapter.rank, targets: adapter.targets, cached: null };
    } else {
      const adapter = randomAdapter(this.config, { ...source.spec, name });
      const version = adapterContentSha256(adapter);
      if (sha256 !== undefined && sha256 !== version) throw versionError(name, sha256, version, 'random');
      entry = { name, tenant, source, sha256: version, rank: adapter.rank, targets: adapter.targets, cached: adapter };
    }
    this.entries.set(name, entry);
    return describe(entry);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  get(name: string): RegisteredAdapter {
    return describe(this.entry(name));
  }

  list(): RegisteredAdapter[] {
    return [...this.entries.values()].map(describe);
  }

  /** The adapters held in host memory (random ones; PEFT folders are read at each load). */
  inMemory(): LoraAdapter[] {
    return [...this.entries.values()].flatMap((e) => (e.cached !== null ? [e.cached] : []));
  }

  /** Throws unless `tenant` owns `adapter` (a request may only use its tenant's adapters). */
  checkTenant(name: string, tenant: string): void {
    const e = this.entry(name);
    if (e.tenant !== tenant) throw new LoraError('lora_tenant', name, `belongs to tenant ${e.tenant}, requested by tenant ${tenant}`);
  }

  /** The adapter's weights, verified against the registered sha256. */
  load(name: string): LoraAdapter {
    const e = this.entry(name);
    this.numLoads++;
    if (e.cached !== null) return e.cached;
    const dir = (e.source as { dir: string }).dir;
    const version = peftFolderSha256(dir, name);
    if (version !== e.sha256) throw versionError(name, e.sha256, version, dir);
    return readPeftFolder(dir, name, this.config);
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (e === undefined) throw new LoraError('lora_unknown', name, 'is not registered');
    return e;
  }
}

function describe(e: Entry): RegisteredAdapter {
  return { name: e.name, tenant: e.tenant, sha256: e.sha256, rank: e.rank, targets: e.targets, source: e.source.kind };
}

function versionError(name: string, expected: string, found: string, where: string): LoraError {
  return new LoraError('lora_version', name, `sha256 mismatch at ${where}: registered ${expected}, found ${found} (the adapter changed; register the new version)`);
}

/**
 * PEFT folders under `root`, named as the workload names adapters: `root/TENANT/ADAPTER` holds
 * adapter_config.json and is registered as `TENANT/ADAPTER` for tenant TENANT. Sorted by name.
 */
export function findPeftFolders(root: string): { name: string; tenant: string; dir: string }[] {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new LoraError('lora_unknown', root, 'the adapters folder does not exist');
  const found: { name: string; tenant: string; dir: string }[] = [];
  for (const tenant of readdirSync(root).sort()) {
    const tdir = join(root, tenant);
    if (!statSync(tdir).isDirectory()) continue;
    for (const adapter of readdirSync(tdir).sort()) {
      const dir = join(tdir, adapter);
      if (existsSync(join(dir, PEFT_CONFIG_FILE))) found.push({ name: `${tenant}/${adapter}`, tenant, dir });
    }
  }
  return found;
}
