// A browser app as a consumer writes it: cookie delivery, same origin, the package's defaults.
// The consumer test bundles it with esbuild and drives it from Chromium through window.consumer.
import { ApiError, createBatonClient, type AuthEvent, type User } from '@baton/client';

const baton = createBatonClient();
const events: string[] = [];
const record = (e: AuthEvent): void => {
  events.push('source' in e ? `${e.type}:${e.source}` : e.type);
};
for (const type of ['login', 'refreshed', 'logout', 'session-expired', 'refresh-unavailable'] as const) baton.on(type, record);

async function describe<T>(run: () => Promise<T>): Promise<T | string> {
  try {
    return await run();
  } catch (e) {
    return e instanceof ApiError ? `ApiError ${e.status} ${e.code ?? e.kind}` : String(e);
  }
}

const consumer = {
  restore: () => describe(() => baton.restore()),
  register: (email: string, password: string) => describe(async () => (await baton.register({ email, password })).email),
  login: (email: string, password: string) => describe(async () => {
    await baton.login({ email, password });
    return baton.state;
  }),
  me: () => describe(async () => {
    const me: User = await baton.me();
    return me.email;
  }),
  /** The typed openapi-fetch client with the same auth layer. */
  sessions: () => describe(async () => {
    const { data, error } = await baton.api.GET('/auth/sessions');
    return data !== undefined ? data.filter((s) => s.current).length : `error ${error.code}`;
  }),
  logout: () => baton.logout(),
  state: () => baton.state,
  expiresInMs: () => (baton.expiresAt() ?? 0) - Date.now(),
  events: () => [...events],
};

declare global {
  interface Window {
    consumer: typeof consumer;
  }
}
window.consumer = consumer;
document.body.dataset['ready'] = 'true';
