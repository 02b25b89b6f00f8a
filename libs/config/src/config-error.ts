/** A configuration problem; start-up prints its message, which names the flag, and exits non-zero. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
