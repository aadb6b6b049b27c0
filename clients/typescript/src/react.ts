// React binding (`@baton/client/react`): a provider for one client and hooks on
// useSyncExternalStore, so every component re-renders when the session state changes and React
// never sees a torn value. Written without JSX so the package needs no JSX build step.
import { createContext, createElement, useContext, useSyncExternalStore, type ReactNode } from 'react';
import type { AuthState, BatonClient } from './client.js';

const ClientContext = createContext<BatonClient | null>(null);

/** Makes `client` available to useBaton() and useSession() below it. The provider does not own
 *  the client: create it once outside React (StrictMode renders twice) and dispose() it yourself
 *  when the app is torn down (for example in Vite's `import.meta.hot.dispose`). */
export function BatonProvider({ client, children }: { client: BatonClient; children?: ReactNode }): ReactNode {
  return createElement(ClientContext.Provider, { value: client }, children);
}

/** The client given to the nearest <BatonProvider>. */
export function useBaton(): BatonClient {
  const client = useContext(ClientContext);
  if (client === null) throw new Error('useBaton() and useSession() need a <BatonProvider client={...}> above them');
  return client;
}

/** The session state: 'unknown' until restore() (or login) answers, then 'authenticated' or
 *  'anonymous'. Re-renders on every change, in this tab or from another tab. */
export function useSession(): AuthState {
  const client = useBaton();
  return useSyncExternalStore(client.subscribe, () => client.state, () => client.state);
}
