import { parseSimConfig } from '../../sim/config.js';
import { runConfig } from '../../sim/run.js';
import { scenarioConfig, type ScenarioOptions } from './scenario.js';

/** Runs one stack of the scenario and returns its summary.json object (plain data, safe to post between threads). */
export function runStack(o: ScenarioOptions): Record<string, unknown> {
  const config = parseSimConfig(scenarioConfig(o), `stratos ${o.stack}`);
  return runConfig(config).summary;
}
