// A tiny history router: the Rust server answers unknown non-API GET paths with index.html, so
// real paths (/profile, /sessions) work on reload and in links.
export { safeNext } from './router-utils';
import { useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent, type ReactNode } from 'react';

export interface Location {
  path: string;
  search: URLSearchParams;
  /** A one-off message carried by the navigation ("You have been logged out."). */
  notice: string | null;
}

const listeners = new Set<() => void>();
let snapshot = read();

function read(): Location {
  const state = window.history.state as { notice?: unknown } | null;
  return {
    path: window.location.pathname,
    search: new URLSearchParams(window.location.search),
    notice: typeof state?.notice === 'string' ? state.notice : null,
  };
}

function changed(): void {
  snapshot = read();
  for (const l of [...listeners]) l();
}

window.addEventListener('popstate', changed);

export function navigate(to: string, options: { notice?: string; replace?: boolean } = {}): void {
  const state = options.notice === undefined ? null : { notice: options.notice };
  if (options.replace) window.history.replaceState(state, '', to);
  else window.history.pushState(state, '', to);
  changed();
}

export function useLocation(): Location {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => snapshot,
  );
}

/** Where the user is now, as a path to come back to after logging in. */
export function currentPathForReturn(): string {
  return window.location.pathname + window.location.search;
}

export function Link({ to, children, ...rest }: { to: string; children: ReactNode } & Omit<AnchorHTMLAttributes<HTMLAnchorElement>, 'href'>) {
  function onClick(event: MouseEvent<HTMLAnchorElement>) {
    rest.onClick?.(event);
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  }
  return (
    <a {...rest} href={to} onClick={onClick}>
      {children}
    </a>
  );
}
