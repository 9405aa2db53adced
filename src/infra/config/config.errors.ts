/** A configuration problem found at startup. The message names the variable or file/model/field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
