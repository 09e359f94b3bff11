import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

/**
 * Reads a config file as JSON (`.json`) or YAML (anything else). Every command that takes
 * `--config` reads through here; checking the shape is the caller's (or the schema's) job.
 */
export function readConfigFile(file: string): unknown {
  try {
    const text = readFileSync(file, 'utf8');
    return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { merge: true });
  } catch (e) {
    throw new Error(`${file}: cannot read: ${(e as Error).message}`);
  }
}

/** `readConfigFile` for configs that must be a mapping (simulate, capacity). */
export function readConfigObject(file: string): Record<string, unknown> {
  const data = readConfigFile(file);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new Error(`${file}: the config must be an object (JSON or YAML mapping)`);
  }
  return data as Record<string, unknown>;
}
