/** A bad flag, variable or config file value; `message` is meant for the operator as is. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
