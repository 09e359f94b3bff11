import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

/** A config file that cannot be read or parsed, or is not a mapping: the user's to fix. */
export class ConfigFileError extends Error {
  readonly code = 'config-file' as const;
}

/**
 * Reads a config file as JSON (`.json`) or YAML (anything else). Every command that takes
 * `--config` reads through here; checking the shape is the caller's (or the schema's) job.
 */
export function readConfigFile(file: string): unknown {
  try {
    const text = readFileSync(file, 'utf8');
    return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { merge: true });
  } catch (e) {
    throw new ConfigFileError(`${file}: cannot read: ${(e as Error).message}`);
  }
}

/** `readConfigFile` for configs that must be a mapping (simulate, capacity). */
export function readConfigObject(file: string): Record<string, unknown> {
  const data = readConfigFile(file);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ConfigFileError(`${file}: the config must be an object (JSON or YAML mapping)`);
  }
  return data as Record<string, unknown>;
}
