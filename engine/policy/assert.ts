// Invariant checks. A failed assertion is a bug in Stratos, never a user error: user errors are
// reported by the callers (CLI, config schema, loaders) with the key, the value and what is allowed.

export class InvariantError extends Error {
  readonly code = 'invariant' as const;
  constructor(message: string) {
    super(`invariant violated: ${message}`);
    this.name = 'InvariantError';
  }
}

/** `message` may be a function so hot paths build no string unless the check fails. */
export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new InvariantError(typeof message === 'string' ? message : message());
}

/**
 * Throws the invariant error: the hot-path form `if (!cond) fail(\`…\`)` builds its message only on
 * failure and, unlike a message closure, allocates nothing per check (a closure capturing loop
 * variables is a fresh object each iteration unless the optimizer removes it).
 */
export function fail(message: string): never {
  throw new InvariantError(message);
}

export function assertInt(value: number, name: string): void {
  if (!Number.isSafeInteger(value)) throw new InvariantError(`${name} must be an integer, got ${value}`);
}

export function assertNonNegInt(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvariantError(`${name} must be a non-negative integer, got ${value}`);
  }
}

export function assertPosInt(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new InvariantError(`${name} must be a positive integer, got ${value}`);
  }
}
