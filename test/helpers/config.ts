import { ConfigError, resolveConfig } from '../../src/config/load.js';

/** The problem lines resolveConfig reports for these sources; [] when they are valid. */
export function problems(env: Record<string, string>, file: unknown = {}): string[] {
  try {
    resolveConfig({ env, file });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}
