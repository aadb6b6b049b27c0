/** Accepts only same-origin absolute paths as a post-login destination (no `//host`, no `/\host`). */
export function safeNext(next: string | null): string | null {
  if (next === null || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return null;
  return next;
}
