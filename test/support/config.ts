import { ConfigError, loadConfig } from '../../src/config';

/** The problems loadConfig reports for an environment; empty when it is valid. */
export function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}
