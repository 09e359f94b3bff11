import type { ModelShape } from '../catalog.js';
import type { CostModel, StepShape } from '../cost/cost-model.js';
import type { DecodeRunPricer } from '../replica/replica.js';
import type { FleetConfig } from './schema.js';

export interface AdapterEntry {
  readonly name: string;
  readonly tenant: string;
  readonly rank: number;
}

/** Bytes of a rank-r adapter on q, k, v, o of every layer, bf16 (as the roofline model sizes it). */
export function adapterBytes(model: ModelShape, rank: number): number {
  return 4 * 2 * rank * model.hiddenSize * model.numLayers * 2;
}

/**
 * The fleet's adapter registry: each tenant's generated adapters (`<tenant>/lora-<k>`, rank from
 * the tenant) followed by its explicit ones. A request's adapter index k picks entry k, so the
 * workload's Zipf popularity within a tenant maps onto this list.
 */
export class LoraRegistry {
  private readonly byTenant = new Map<string, AdapterEntry[]>();

  constructor(fleet: FleetConfig) {
    for (const t of fleet.tenants) {
      const list: AdapterEntry[] = [];
      for (let k = 0; k < t.numAdapters; k++) list.push({ name: `${t.name}/lora-${k}`, tenant: t.name, rank: t.adapterRank });
      this.byTenant.set(t.name, list);
    }
    for (const a of fleet.adapters) this.byTenant.get(a.tenant)!.push({ name: a.name, tenant: a.tenant, rank: a.rank });
  }

  /** The registry entry behind a workload adapter name `<tenant>/lora-<k>`; null for the base model. */
  resolve(tenant: string, adapter: string | null): AdapterEntry | null {
    if (adapter === null) return null;
    const list = this.byTenant.get(tenant);
    const k = Number(adapter.slice(adapter.lastIndexOf('-') + 1));
    const entry = list?.[k];
    if (entry === undefined) throw new Error(`adapter ${adapter}: tenant ${tenant} has no adapter ${k} in the registry`);
    return entry;
  }

  numAdapters(): number {
    let n = 0;
    for (const list of this.byTenant.values()) n += list.length;
    return n;
  }

  /** Adapters of the given tenants, for per-pool figures. */
  adaptersOf(tenants: readonly string[]): AdapterEntry[] {
    return tenants.flatMap((t) => this.byTenant.get(t) ?? []);
  }
}

/**
 * Adds the extra time of loading adapters from local disk instead of pinned host memory: the base
 * model prices a load at the PCIe rate; from disk the slower of disk and PCIe bounds it.
 */
export class DiskLoadCostModel implements CostModel {
  readonly name: string;
  readonly calibration: 'uncalibrated' | 'calibrated';
  private readonly extraUsPerLoad: number;

  constructor(
    private readonly inner: CostModel,
    bytesPerAdapter: number,
    pcieBytesPerS: number,
    diskBytesPerS: number,
  ) {
    this.name = `${inner.name}+disk-lora`;
    this.calibration = inner.calibration;
    this.extraUsPerLoad = Math.max(0, (bytesPerAdapter / diskBytesPerS - bytesPerAdapter / pcieBytesPerS) * 1e6);
    // Decode runs load no adapters, so the inner model's fast path prices them unchanged.
    const pricer = inner as CostModel & Partial<DecodeRunPricer>;
    if (typeof pricer.decodeRunUs === 'function') this.decodeRunUs = pricer.decodeRunUs.bind(inner);
    if (typeof pricer.decodeRunIntoUs === 'function') this.decodeRunIntoUs = pricer.decodeRunIntoUs.bind(inner);
    // Power management re-prices prefill steps from the inner price (host and loads included).
    if (typeof inner.newPowerState === 'function') this.newPowerState = inner.newPowerState.bind(inner);
  }

  readonly newPowerState?: CostModel['newPowerState'];

  readonly decodeRunUs?: DecodeRunPricer['decodeRunUs'];
  readonly decodeRunIntoUs?: DecodeRunPricer['decodeRunIntoUs'];

  hostUs(numSeqs: number): number {
    return this.inner.hostUs(numSeqs);
  }

  stepUs(shape: StepShape): number {
    const base = this.inner.stepUs(shape);
    return shape.numLoraLoads === 0 ? base : base + Math.ceil(shape.numLoraLoads * this.extraUsPerLoad);
  }
}
