import { createContext, useContext, useSyncExternalStore, type ReactNode } from 'react';
import type { AuthState, BatonClient } from '@baton/client';

const ClientContext = createContext<BatonClient | null>(null);

export function ClientProvider({ client, children }: { client: BatonClient; children: ReactNode }) {
  return <ClientContext.Provider value={client}>{children}</ClientContext.Provider>;
}

export function useClient(): BatonClient {
  const client = useContext(ClientContext);
  if (client === null) throw new Error('useClient outside <ClientProvider>');
  return client;
}

export function useAuthState(): AuthState {
  const client = useClient();
  return useSyncExternalStore(client.subscribe, () => client.state);
}
