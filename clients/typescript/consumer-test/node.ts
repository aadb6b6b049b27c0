// Type-level use of body delivery, as a Node consumer writes it (checked by strict tsc only).
import { createBatonClient, memoryTokenStore, type RefreshOutcome, type RefreshTokenStore } from '@baton/client';

const store: RefreshTokenStore = memoryTokenStore();
export const client = createBatonClient({
  baseUrl: 'http://127.0.0.1:8080',
  refreshTokenStore: store,
  refreshTimeoutMs: 5_000,
  proactiveRefresh: { leadMs: 10_000 },
});

export async function refreshed(): Promise<boolean> {
  const outcome: RefreshOutcome = await client.refresh();
  return outcome.kind === 'refreshed';
}

// @ts-expect-error a misspelt option is a type error
createBatonClient({ baseUrl: 'http://127.0.0.1:8080', refreshTokenStor: store });
// @ts-expect-error an operation that is not in the API
void client.api.GET('/auth/nope');
