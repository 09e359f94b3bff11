/**
 * An error the user can cause (a malformed trace row, a bad flag, a model that does not fit the
 * GPU): it carries a string `code` (zod style) and its message names what to fix, so the CLI prints
 * the message alone and exits 2. `invariant` errors are bugs and keep their stack.
 */
export function isUserError(e: unknown): e is Error & { readonly code: string } {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string' && (e as { code?: unknown }).code !== 'invariant';
}
