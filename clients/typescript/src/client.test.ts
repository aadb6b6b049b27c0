import createClient from 'openapi-fetch';
import { beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { createBatonClient, type AuthEvent, type BatonClient } from './client.js';
import { ApiError, RefreshUnavailableError } from './errors.js';
import { FakeServer, fakeChannelBus, fakeLocks } from './testing/fake-server.js';
import type { LoginRequest, Problem, RegisterRequest, Session, TokenPair, User } from './types.js';

const baseUrl = 'http://baton.test';
const credentials = { email: 'ada@example.test', password: 'correct horse' };

function tab(server: FakeServer, shared: { locks?: ReturnType<typeof fakeLocks>; bus?: ReturnType<typeof fakeChannelBus> } = {}) {
  const client = createBatonClient({
    baseUrl,
    fetch: server.fetch,
    locks: shared.locks ?? null,
    channel: shared.bus ? shared.bus() : null,
  });
  const events: AuthEvent[] = [];
  for (const type of ['login', 'refreshed', 'logout', 'session-expired'] as const) {
    client.on(type, (e) => events.push(e));
  }
  return { client, events };
}

let server: FakeServer;
let client: BatonClient;
let events: AuthEvent[];

beforeEach(async () => {
  server = new FakeServer();
  ({ client, events } = tab(server));
  await client.login(credentials);
  events.length = 0;
});

describe('401 → refresh → retry', () => {
  it('one 401 makes exactly one refresh and one retry with the new token', async () => {
    server.expireAccessTokens();
    const me = await client.me();
    expect(me.email).toBe(credentials.email);
    expect(server.log.map((r) => `${r.method} ${r.path} ${r.authorization ?? '-'}`)).toEqual([
      'POST /auth/login -',
      'GET /auth/me Bearer at-1',
      'POST /auth/refresh -',
      'GET /auth/me Bearer at-2',
    ]);
    expect(events).toEqual([{ type: 'refreshed', source: 'this-tab' }]);
  });

  it('10 concurrent 401s share exactly one refresh and all 10 retries succeed', async () => {
    server.expireAccessTokens();
    const results = await Promise.all(Array.from({ length: 10 }, () => client.me()));
    expect(results).toHaveLength(10);
    expect(results.every((u) => u.email === credentials.email)).toBe(true);
    expect(server.count('POST', '/auth/refresh')).toBe(1);
    const retries = server.log.filter((r) => r.path === '/auth/me' && r.authorization === 'Bearer at-2');
    expect(retries).toHaveLength(10);
    expect(server.count('GET', '/auth/me')).toBe(20);
  });

  it('a request issued while a refresh runs waits for it and goes out with the new token', async () => {
    server.expireAccessTokens();
    server.refreshLatency = 50;
    const first = client.me();
    // wait until the first 401 is in and its refresh has reached the server (and is still running)
    while (server.count('POST', '/auth/refresh') === 0) await new Promise((r) => setTimeout(r, 1));
    const second = client.me();
    await Promise.all([first, second]);
    expect(server.count('POST', '/auth/refresh')).toBe(1);
    expect(server.log.filter((r) => r.path === '/auth/me').map((r) => r.authorization)).toEqual([
      'Bearer at-1',
      'Bearer at-2',
      'Bearer at-2',
    ]);
  });

  it('a second 401 after the retry is final: no loop', async () => {
    server.rejectAllTokens = true;
    const error = await client.me().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(401);
    expect(server.count('POST', '/auth/refresh')).toBe(1);
    expect(server.count('GET', '/auth/me')).toBe(2);
  });

  it('re-sends a POST body intact on the retry (the body stream is cloned before sending)', async () => {
    type TestPaths = {
      '/notes': {
        parameters: { query?: never; header?: never; path?: never; cookie?: never };
        post: {
          parameters: { query?: never; header?: never; path?: never; cookie?: never };
          requestBody: { content: { 'application/json': { text: string; n: number } } };
          responses: { 201: { headers: Record<string, unknown>; content: { 'application/json': { echoed: unknown } } } };
        };
      };
    };
    const notes = createClient<TestPaths>({ baseUrl, fetch: server.fetch });
    notes.use(client.middleware);
    server.expireAccessTokens();
    const body = { text: 'héllo ✓ "quoted" \u2028 '.repeat(500), n: 42 };
    const { data, response } = await notes.POST('/notes', { body });
    expect(response.status).toBe(201);
    expect(data?.echoed).toEqual(body);
    const posts = server.log.filter((r) => r.path === '/notes');
    expect(posts).toHaveLength(2);
    expect(posts[0]?.body).toBe(JSON.stringify(body));
    expect(posts[1]?.body).toBe(posts[0]?.body);
    expect(posts.map((r) => r.authorization)).toEqual(['Bearer at-1', 'Bearer at-2']);
  });
});

describe('refresh failure', () => {
  it('a 401 from the refresh clears the token and emits one session-expired event, no retry loop', async () => {
    server.expireAccessTokens();
    server.refreshMode = 401;
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => client.me()));
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const e = (r as PromiseRejectedResult).reason as ApiError;
      expect(e.status).toBe(401);
      expect(e.sessionExpired).toBe(true);
    }
    expect(events).toEqual([{ type: 'session-expired', code: 'refresh_token_invalid' }]);
    expect(server.count('POST', '/auth/refresh')).toBe(1);
    expect(server.count('GET', '/auth/me')).toBe(5); // nothing retried
    expect(client.isAuthenticated()).toBe(false);
    expect(client.state).toBe('anonymous');
  });

  it.each([['network' as const], [503 as const], [500 as const], [429 as const], [409 as const]])(
    'a %s from the refresh is retryable and keeps the session',
    async (mode) => {
      server.expireAccessTokens();
      server.refreshMode = mode;
      const error = await client.me().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RefreshUnavailableError);
      expect((error as RefreshUnavailableError).retryable).toBe(true);
      if (mode === 429) expect((error as RefreshUnavailableError).retryAfter).toBe(7);
      expect(events.filter((e) => e.type === 'session-expired')).toEqual([]);
      expect(client.isAuthenticated()).toBe(true);
      // once the server is back, the same session goes on
      server.refreshMode = 'ok';
      await expect(client.me()).resolves.toMatchObject({ email: credentials.email });
    },
  );
});

describe('the refresh call is never intercepted', () => {
  it('refresh() answered 401 is one request, no Authorization header, and no recursion', async () => {
    server.refreshMode = 401;
    const outcome = await client.refresh();
    expect(outcome).toEqual({ kind: 'expired', code: 'refresh_token_invalid' });
    const refreshes = server.log.filter((r) => r.path === '/auth/refresh');
    expect(refreshes).toHaveLength(1);
    expect(refreshes[0]).toMatchObject({ authorization: null, credentials: 'include', body: '{}' });
    expect(server.log).toHaveLength(2); // the login, then this refresh
  });

  it('a 401 from login (wrong password) is an answer, not a reason to refresh', async () => {
    const error = await client.login({ ...credentials, password: 'wrong' }).catch((e: unknown) => e);
    expect((error as ApiError).code).toBe('invalid_credentials');
    expect(server.count('POST', '/auth/refresh')).toBe(0);
  });
});

describe('login, logout, restore', () => {
  it('logout clears the in-memory token even when the network fails', async () => {
    server.logoutFails = true;
    await expect(client.logout()).resolves.toBeUndefined();
    expect(client.isAuthenticated()).toBe(false);
    expect(events).toEqual([{ type: 'logout', source: 'this-tab' }]);
    server.refreshMode = 401;
    await client.me().catch(() => undefined);
    const last = server.log.filter((r) => r.path === '/auth/me');
    expect(last.map((r) => r.authorization)).toEqual([null]); // the old token is not sent again
  });

  it('log out everywhere revokes every session, then clears memory and the cookie', async () => {
    await client.revokeAllSessions();
    expect(server.log.slice(-2).map((r) => `${r.method} ${r.path}`)).toEqual([
      'DELETE /auth/sessions',
      'POST /auth/logout',
    ]);
    expect(client.isAuthenticated()).toBe(false);
  });

  it('a refresh still in flight when the user logs out does not log them back in', async () => {
    server.expireAccessTokens();
    server.refreshLatency = 30;
    const pending = client.me().catch((e: unknown) => e);
    while (server.count('POST', '/auth/refresh') === 0) await new Promise((r) => setTimeout(r, 1));
    await client.logout();
    await pending;
    expect(client.isAuthenticated()).toBe(false);
    expect(client.state).toBe('anonymous');
  });

  it('a refused refresh that overlapped a new login neither clears the new token nor announces expiry', async () => {
    server.expireAccessTokens();
    server.refreshMode = 401;
    server.refreshLatency = 30;
    const pending = client.me().catch((e: unknown) => e);
    while (server.count('POST', '/auth/refresh') === 0) await new Promise((r) => setTimeout(r, 1));
    await client.login(credentials);
    await pending;
    expect(client.isAuthenticated()).toBe(true);
    expect(events.filter((e) => e.type === 'session-expired')).toEqual([]);
    await expect(client.me()).resolves.toMatchObject({ email: credentials.email });
  });

  it('restore() logs in silently from the cookie on page load', async () => {
    const fresh = tab(server);
    expect(fresh.client.state).toBe('unknown');
    await expect(fresh.client.restore()).resolves.toBe(true);
    expect(fresh.client.state).toBe('authenticated');
    await expect(fresh.client.me()).resolves.toMatchObject({ email: credentials.email });
  });

  it('restore() without a live cookie is quietly anonymous (no session-expired event)', async () => {
    server.refreshMode = 401;
    const fresh = tab(server);
    await expect(fresh.client.restore()).resolves.toBe(false);
    expect(fresh.client.state).toBe('anonymous');
    expect(fresh.events).toEqual([]);
  });

  it('register returns the created user, and a taken email is a typed error', async () => {
    await expect(client.register({ email: 'new@example.test', password: 'long enough' })).resolves.toMatchObject({
      email: 'new@example.test',
    });
    const error = await client.register({ email: credentials.email, password: 'long enough' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe('email_taken');
    expect((error as ApiError).status).toBe(409);
  });
});

describe('across tabs', () => {
  it('two tabs whose tokens expire together make one refresh and both succeed', async () => {
    const locks = fakeLocks();
    const bus = fakeChannelBus();
    const a = tab(server, { locks, bus });
    const b = tab(server, { locks, bus });
    await a.client.login(credentials);
    await new Promise((r) => setTimeout(r, 5)); // the login reaches tab b over the channel
    expect(b.client.isAuthenticated()).toBe(true);
    const refreshesBefore = server.count('POST', '/auth/refresh');
    server.expireAccessTokens();
    const [ua, ub] = await Promise.all([a.client.me(), b.client.me()]);
    expect(ua.email).toBe(credentials.email);
    expect(ub.email).toBe(credentials.email);
    expect(server.count('POST', '/auth/refresh') - refreshesBefore).toBe(1);
    expect(locks.contended).toBe(1); // the second tab found the lock taken and waited for it
    expect(locks.acquisitions).toBe(2); // both tabs went through the lock; the second saw the new token
  });

  it('the tab that waited for the lock waits for the token even when the channel is slower than the lock', async () => {
    const locks = fakeLocks();
    const bus = fakeChannelBus(40); // the message lands ~40 ms after the lock is released
    const a = tab(server, { locks, bus });
    const b = tab(server, { locks, bus });
    await a.client.login(credentials);
    await new Promise((r) => setTimeout(r, 60));
    server.expireAccessTokens();
    const refreshesBefore = server.count('POST', '/auth/refresh');
    await Promise.all([a.client.me(), b.client.me()]);
    expect(server.count('POST', '/auth/refresh') - refreshesBefore).toBe(1);
  });

  it('logout in one tab clears the other', async () => {
    const bus = fakeChannelBus();
    const a = tab(server, { bus });
    const b = tab(server, { bus });
    await a.client.login(credentials);
    await new Promise((r) => setTimeout(r, 5));
    await a.client.logout();
    await new Promise((r) => setTimeout(r, 5));
    expect(b.client.isAuthenticated()).toBe(false);
    expect(b.events.at(-1)).toEqual({ type: 'logout', source: 'other-tab' });
  });
});

describe('types come from the generated schema', () => {
  it('exposes the wire types', () => {
    // a media-type mismatch between the helpers and the document would collapse these to never
    expectTypeOf<TokenPair>().not.toBeNever();
    expectTypeOf<User>().not.toBeNever();
    expectTypeOf<Session>().not.toBeNever();
    expectTypeOf<LoginRequest>().not.toBeNever();
    expectTypeOf<RegisterRequest>().not.toBeNever();
    expectTypeOf<Problem>().not.toBeNever();
    expectTypeOf<Session['current']>().toEqualTypeOf<boolean>();
    expectTypeOf<Problem['code']>().toExtend<string>();
    expectTypeOf<TokenPair['access_token']>().toEqualTypeOf<string>();
    expectTypeOf<TokenPair['expires_in']>().toBeNumber();
    expectTypeOf<User>().toHaveProperty('email');
    expectTypeOf(client.me).returns.resolves.toEqualTypeOf<User>();
    expectTypeOf(client.login).parameter(0).toHaveProperty('password');
    client.on('session-expired', (e) => {
      expectTypeOf(e).toEqualTypeOf<{ type: 'session-expired'; code: string | undefined }>();
    });
    // @ts-expect-error an operation that is not in the OpenAPI document
    void client.api.GET('/auth/nope');
    // @ts-expect-error login bodies are strict
    void client.login({ ...credentials, remember: true }).catch(() => undefined);
    // @ts-expect-error the path parameter is required
    void client.api.DELETE('/auth/sessions/{id}').catch(() => undefined);
  });
});
