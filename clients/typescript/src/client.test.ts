import createClient from 'openapi-fetch';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { createBatonClient, memoryTokenStore, type AuthEvent, type BatonClient, type BatonClientOptions } from './client.js';
import { ApiError, RefreshUnavailableError } from './errors.js';
import { FakeServer, fakeChannelBus, fakeDocument, fakeLocks } from './testing/fake-server.js';
import type { LoginRequest, Problem, RegisterRequest, Session, TokenPair, User } from './types.js';

const baseUrl = 'http://baton.test';
const credentials = { email: 'ada@example.test', password: 'correct horse' };

const opened: BatonClient[] = [];

/** One "tab": a client on the fake server; shared locks and channel bus make several tabs of one
 *  browser. Proactive refresh is off unless a test turns it on. */
function tab(
  server: FakeServer,
  shared: { locks?: ReturnType<typeof fakeLocks>; bus?: ReturnType<typeof fakeChannelBus> } = {},
  options: BatonClientOptions = {},
) {
  const client = createBatonClient({
    baseUrl,
    fetch: server.fetch,
    locks: shared.locks ?? null,
    channel: shared.bus ? shared.bus() : null,
    document: null,
    proactiveRefresh: false,
    ...options,
  });
  opened.push(client);
  const events: AuthEvent[] = [];
  for (const type of ['login', 'refreshed', 'logout', 'session-expired', 'refresh-unavailable'] as const) {
    client.on(type, (e) => events.push(e));
  }
  return { client, events };
}

let server: FakeServer;
let client: BatonClient;
let events: AuthEvent[];

/** Settles `p` while fake time moves on by `ms` (the fake server's latencies are timers too). */
async function within<T>(ms: number, p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  const settled = p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  await vi.advanceTimersByTimeAsync(ms);
  return settled;
}

beforeEach(async () => {
  server = new FakeServer();
  ({ client, events } = tab(server));
  await client.login(credentials);
  events.length = 0;
});

afterEach(() => {
  for (const c of opened.splice(0)) c.dispose();
  vi.useRealTimers();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
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
      // once the server is back and the cooldown is over, the same session goes on
      server.refreshMode = 'ok';
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      vi.advanceTimersByTime(7_000);
      const again = await within(100, client.me());
      expect(again).toMatchObject({ ok: true, value: { email: credentials.email } });
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

const fakeTime = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });

describe('frozen tabs and flaky networks', () => {
  it('a refresh that never answers is aborted after refreshTimeoutMs and rejects with a retryable timeout, keeping the session', async () => {
    fakeTime();
    const t = tab(server, {}, { refreshTimeoutMs: 10_000 });
    await within(10, t.client.login(credentials));
    server.expireAccessTokens();
    server.refreshMode = 'hang';
    let done = false;
    const call = t.client.me().finally(() => {
      done = true;
    });
    const result = within(10_100, call);
    await vi.advanceTimersByTimeAsync(9_900);
    expect(done).toBe(false); // still within the deadline
    const r = await result;
    expect(done).toBe(true);
    expect(r.ok).toBe(false);
    const error = (r as { error: unknown }).error;
    expect(error).toBeInstanceOf(RefreshUnavailableError);
    expect(error).toMatchObject({ kind: 'timeout', retryable: true, sessionExpired: false });
    expect(t.client.isAuthenticated()).toBe(true);
    expect(t.events.filter((e) => e.type === 'session-expired')).toEqual([]);
    expect(t.events.at(-1)).toMatchObject({ type: 'refresh-unavailable' });
  });

  it('the refresh deadline also ends the wait when an injected fetch ignores the abort signal', async () => {
    fakeTime();
    const deaf = (request: Request) =>
      new URL(request.url).pathname === '/auth/refresh' ? new Promise<Response>(() => undefined) : server.fetch(request);
    const t = tab(server, {}, { fetch: deaf, refreshTimeoutMs: 3_000 });
    await within(10, t.client.login(credentials));
    const outcome = await within(3_001, t.client.refresh());
    expect(outcome).toMatchObject({ ok: true, value: { kind: 'unavailable', error: { kind: 'timeout' } } });
  });

  it('a tab waiting for a lock held by a frozen tab refreshes without it after lockTimeoutMs', async () => {
    fakeTime();
    const locks = fakeLocks();
    const release = locks.hold('baton-auth:refresh'); // the frozen tab: holds the lock, never returns
    const t = tab(server, { locks }, { lockTimeoutMs: 5_000 });
    await within(10, t.client.login(credentials));
    server.expireAccessTokens();
    const pending = within(5_200, t.client.me());
    await vi.advanceTimersByTimeAsync(4_900);
    expect(server.count('POST', '/auth/refresh')).toBe(0); // still waiting politely
    const r = await pending;
    expect(r).toMatchObject({ ok: true, value: { email: credentials.email } });
    expect(locks.aborted).toBe(1);
    expect(server.count('POST', '/auth/refresh')).toBe(1);
    release();
  });

  it('after a lock timeout the next refreshes skip the lock for a minute instead of waiting again', async () => {
    fakeTime();
    const locks = fakeLocks();
    const release = locks.hold('baton-auth:refresh');
    const t = tab(server, { locks }, { lockTimeoutMs: 5_000 });
    await within(10, t.client.login(credentials));
    await within(5_100, t.client.refresh()); // waits out the lock once
    const started = Date.now();
    expect(await within(50, t.client.refresh())).toMatchObject({ ok: true, value: { kind: 'refreshed' } });
    expect(Date.now() - started).toBeLessThan(100);
    expect(locks.aborted).toBe(1);
    await vi.advanceTimersByTimeAsync(60_000);
    release(); // the frozen tab is back: the lock is used again
    await within(50, t.client.refresh());
    expect(locks.acquisitions).toBe(2); // the holder, then this tab
  });

  it('a lock manager that refuses every request does not stop the refresh', async () => {
    const broken = {
      request: () => Promise.reject(new DOMException('locks are not allowed here', 'SecurityError')),
    };
    const t = tab(server, {}, { locks: broken });
    await t.client.login(credentials);
    server.expireAccessTokens();
    await expect(t.client.me()).resolves.toMatchObject({ email: credentials.email });
    expect(server.count('POST', '/auth/refresh')).toBe(1);
  });

  it('works with the defaults where Web Locks and BroadcastChannel are missing', async () => {
    vi.stubGlobal('BroadcastChannel', undefined);
    vi.stubGlobal('navigator', {});
    const plain = createBatonClient({ baseUrl, fetch: server.fetch, proactiveRefresh: false });
    opened.push(plain);
    await plain.login(credentials);
    server.expireAccessTokens();
    await expect(plain.me()).resolves.toMatchObject({ email: credentials.email });
    await plain.logout();
    expect(plain.state).toBe('anonymous');
  });

  it('after an unavailable refresh no refresh is sent during the backoff, and the error says how long to wait', async () => {
    fakeTime();
    const t = tab(server, {}, { backoff: { initialMs: 4_000, maxMs: 60_000 } });
    await within(10, t.client.login(credentials));
    server.expireAccessTokens();
    server.refreshMode = 'network';
    await within(50, t.client.me());
    expect(server.count('POST', '/auth/refresh')).toBe(1);
    server.refreshMode = 'ok';
    await vi.advanceTimersByTimeAsync(1_000);
    const during = await within(50, Promise.all([t.client.me(), t.client.me(), t.client.refresh()]));
    expect(during.ok).toBe(false);
    expect((during as { error: RefreshUnavailableError }).error).toMatchObject({ kind: 'network', retryAfter: 3 });
    expect(server.count('POST', '/auth/refresh')).toBe(1); // nothing sent: no retry storm
    await vi.advanceTimersByTimeAsync(3_000);
    const after = await within(50, t.client.me());
    expect(after).toMatchObject({ ok: true, value: { email: credentials.email } });
    expect(server.count('POST', '/auth/refresh')).toBe(2);
  });

  it('the backoff doubles with each failure up to maxMs and starts over after a success', async () => {
    fakeTime();
    const t = tab(server, {}, { backoff: { initialMs: 1_000, maxMs: 4_000 } });
    await within(10, t.client.login(credentials));
    server.refreshMode = 503;
    const sent = () => server.count('POST', '/auth/refresh');
    for (const cooldown of [1_000, 2_000, 4_000, 4_000]) {
      const before = sent();
      expect(await within(20, t.client.refresh())).toMatchObject({ ok: true, value: { kind: 'unavailable' } });
      expect(sent()).toBe(before + 1);
      await vi.advanceTimersByTimeAsync(cooldown - 200);
      const inside = await within(0, t.client.refresh()); // answered from the cooldown
      expect((inside as { value: { error: RefreshUnavailableError } }).value.error.retryAfter).toBe(1);
      expect(sent()).toBe(before + 1);
      await vi.advanceTimersByTimeAsync(200);
    }
    server.refreshMode = 'ok';
    expect(await within(20, t.client.refresh())).toMatchObject({ ok: true, value: { kind: 'refreshed' } });
    server.refreshMode = 503;
    await within(20, t.client.refresh());
    await vi.advanceTimersByTimeAsync(1_000); // after a success the first cooldown is 1 s again
    const before = sent();
    await within(20, t.client.refresh());
    expect(sent()).toBe(before + 1);
  });

  it.each([
    ['a 503 with Retry-After: 20', 503 as const, '20', 20],
    ['a 429 with retry_after 7 in the body', 429 as const, undefined, 7],
  ])('%s sets the cooldown to that long', async (_name, mode, header, seconds) => {
    fakeTime();
    const t = tab(server, {}, { backoff: { initialMs: 1_000, maxMs: 2_000 } });
    await within(10, t.client.login(credentials));
    server.refreshMode = mode;
    server.refreshRetryAfter = header;
    await within(50, t.client.refresh());
    server.refreshMode = 'ok';
    await vi.advanceTimersByTimeAsync(seconds * 1000 - 500);
    expect(await within(50, t.client.refresh())).toMatchObject({ ok: true, value: { kind: 'unavailable' } });
    expect(server.count('POST', '/auth/refresh')).toBe(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(await within(50, t.client.refresh())).toMatchObject({ ok: true, value: { kind: 'refreshed' } });
  });

  it('an unknown problem code keeps the session unless it comes as a 401 from the refresh', async () => {
    const unknownCode = (status: number) => (request: Request) =>
      new URL(request.url).pathname === '/auth/refresh'
        ? Promise.resolve(new Response(JSON.stringify({ type: 'about:blank', title: 'x', status, detail: 'x', code: 'brand_new_code' }), { status, headers: { 'Content-Type': 'application/problem+json' } }))
        : server.fetch(request);
    const kept = tab(server, {}, { fetch: unknownCode(400) });
    await kept.client.login(credentials);
    expect(await kept.client.refresh()).toMatchObject({ kind: 'unavailable', error: { code: 'brand_new_code' } });
    expect(kept.client.isAuthenticated()).toBe(true);
    const ended = tab(server, {}, { fetch: unknownCode(401) });
    await ended.client.login(credentials);
    expect(await ended.client.refresh()).toEqual({ kind: 'expired', code: 'brand_new_code' });
    expect(ended.client.isAuthenticated()).toBe(false);
  });

  it('a refresh in another tab ends this tab\'s cooldown', async () => {
    const bus = fakeChannelBus();
    const a = tab(server, { bus }, { backoff: { initialMs: 60_000 } });
    const b = tab(server, { bus });
    await a.client.login(credentials);
    server.refreshMode = 'network';
    expect((await a.client.refresh()).kind).toBe('unavailable');
    server.refreshMode = 'ok';
    expect((await b.client.refresh()).kind).toBe('refreshed');
    await new Promise((r) => setTimeout(r, 5));
    server.expireAccessTokens();
    server.valid.add('at-99');
    expect((await a.client.refresh()).kind).toBe('refreshed');
  });

  it('dispose() releases the proactive timer, the channel and visibility listeners, and aborts a running refresh', async () => {
    const bus = fakeChannelBus();
    const doc = fakeDocument();
    const a = tab(server, { bus });
    const b = tab(server, { bus }, { document: doc, proactiveRefresh: {} });
    expect(doc.listeners).toBe(1);
    await a.client.login(credentials);
    await new Promise((r) => setTimeout(r, 5));
    expect(b.client.isAuthenticated()).toBe(true);
    server.refreshMode = 'hang';
    const running = b.client.refresh();
    await new Promise((r) => setTimeout(r, 20));
    fakeTime();
    b.client.dispose();
    b.client.dispose(); // idempotent
    expect(vi.getTimerCount()).toBe(0); // no proactive timer left behind
    vi.useRealTimers();
    expect(doc.listeners).toBe(0);
    expect(await running).toMatchObject({ kind: 'unavailable', error: { kind: 'network' } });
    await a.client.logout();
    await new Promise((r) => setTimeout(r, 5));
    expect(b.client.isAuthenticated()).toBe(true); // no longer listening to the other tabs
  });
});

describe('proactive refresh', () => {
  it('refreshes once shortly before expiry (lead, minus up to the jitter) without any 401', async () => {
    fakeTime();
    vi.spyOn(Math, 'random').mockReturnValue(1); // the full jitter: earliest moment
    server.expiresIn = 900;
    const t = tab(server, {}, { proactiveRefresh: { leadMs: 30_000, jitterMs: 5_000 } });
    await within(10, t.client.login(credentials));
    await vi.advanceTimersByTimeAsync(900_000 - 35_000 - 100);
    expect(server.count('POST', '/auth/refresh')).toBe(0);
    await vi.advanceTimersByTimeAsync(200);
    expect(server.count('POST', '/auth/refresh')).toBe(1);
    await vi.advanceTimersByTimeAsync(50);
    expect(t.client.expiresAt()).toBeGreaterThan(Date.now() + 899_000); // the new token's life
    expect(t.events).toContainEqual({ type: 'refreshed', source: 'this-tab' });
    expect(server.log.filter((r) => r.path === '/auth/me')).toEqual([]);
  });

  it('caps the lead at a quarter and the jitter at a tenth of a short token\'s life', async () => {
    fakeTime();
    vi.spyOn(Math, 'random').mockReturnValue(0);
    server.expiresIn = 4;
    const t = tab(server, {}, { proactiveRefresh: { leadMs: 30_000, jitterMs: 5_000 } });
    await within(10, t.client.login(credentials));
    await vi.advanceTimersByTimeAsync(2_900);
    expect(server.count('POST', '/auth/refresh')).toBe(0);
    await vi.advanceTimersByTimeAsync(200); // at 3 s: 4 s minus a quarter
    expect(server.count('POST', '/auth/refresh')).toBe(1);
  });

  it('a hidden tab does not refresh ahead of time; it refreshes when it becomes visible', async () => {
    fakeTime();
    const doc = fakeDocument('hidden');
    server.expiresIn = 60;
    const t = tab(server, {}, { document: doc, proactiveRefresh: {} });
    await within(10, t.client.login(credentials));
    await vi.advanceTimersByTimeAsync(120_000);
    expect(server.count('POST', '/auth/refresh')).toBe(0);
    doc.set('visible');
    await vi.advanceTimersByTimeAsync(50);
    expect(server.count('POST', '/auth/refresh')).toBe(1);
  });

  it('two tabs refresh proactively once: the other tab takes the token over the channel and re-arms', async () => {
    fakeTime();
    const locks = fakeLocks();
    const bus = fakeChannelBus();
    server.expiresIn = 60;
    const a = tab(server, { locks, bus }, { proactiveRefresh: {}, document: fakeDocument() });
    const b = tab(server, { locks, bus }, { proactiveRefresh: {}, document: fakeDocument() });
    await within(10, a.client.login(credentials));
    expect(b.client.isAuthenticated()).toBe(true);
    await vi.advanceTimersByTimeAsync(50_000); // past both tabs' refresh moments (45..48 s)
    expect(server.count('POST', '/auth/refresh')).toBe(1);
    expect(b.events).toContainEqual({ type: 'refreshed', source: 'other-tab' });
    await vi.advanceTimersByTimeAsync(50_000); // and again for the next token: still one each time
    expect(server.count('POST', '/auth/refresh')).toBe(2);
  });

  it('proactiveRefresh: false never refreshes ahead of time; the first call after expiry pays one 401', async () => {
    fakeTime();
    server.expiresIn = 60;
    const t = tab(server, {}, { proactiveRefresh: false });
    await within(10, t.client.login(credentials));
    await vi.advanceTimersByTimeAsync(120_000);
    expect(server.count('POST', '/auth/refresh')).toBe(0);
    server.expireAccessTokens();
    expect(await within(50, t.client.me())).toMatchObject({ ok: true });
    expect(server.log.slice(-3).map((r) => `${r.method} ${r.path}`)).toEqual(['GET /auth/me', 'POST /auth/refresh', 'GET /auth/me']);
  });

  it('after an unavailable proactive refresh the next try waits for the cooldown', async () => {
    fakeTime();
    vi.spyOn(Math, 'random').mockReturnValue(0);
    server.expiresIn = 100;
    server.refreshMode = 503;
    const t = tab(server, {}, { proactiveRefresh: { leadMs: 20_000 }, backoff: { initialMs: 5_000 } });
    await within(10, t.client.login(credentials));
    await vi.advanceTimersByTimeAsync(80_100); // 100 s minus the lead
    expect(server.count('POST', '/auth/refresh')).toBe(1);
    server.refreshMode = 'ok';
    await vi.advanceTimersByTimeAsync(4_800);
    expect(server.count('POST', '/auth/refresh')).toBe(1);
    await vi.advanceTimersByTimeAsync(300);
    expect(server.count('POST', '/auth/refresh')).toBe(2);
    expect(t.client.isAuthenticated()).toBe(true);
  });
});

describe('body delivery (Node, scripts)', () => {
  it('login asks for the refresh token in the body and stores it; a refresh sends it and stores the rotated one', async () => {
    const store = memoryTokenStore();
    const t = tab(server, {}, { refreshTokenStore: store });
    await t.client.login(credentials);
    const login = server.log.at(-1);
    expect(JSON.parse(login?.body ?? '{}')).toEqual({ ...credentials, refresh_token_in_body: true });
    expect(login?.credentials).toBe('omit');
    const first = await store.get();
    expect(first).toMatch(/^rt-/);
    server.expireAccessTokens();
    await expect(t.client.me()).resolves.toMatchObject({ email: credentials.email });
    const refresh = server.log.find((r) => r.path === '/auth/refresh');
    expect(JSON.parse(refresh?.body ?? '{}')).toEqual({ refresh_token: first });
    expect(refresh?.credentials).toBe('omit');
    expect(await store.get()).not.toBe(first);
    expect(await store.get()).toBe(server.bodyRefreshToken);
  });

  it('a refused refresh clears the store; restore() without a stored token sends nothing', async () => {
    const store = memoryTokenStore('rt-stale');
    const t = tab(server, {}, { refreshTokenStore: store });
    await expect(t.client.restore()).resolves.toBe(false);
    expect(await store.get()).toBeNull();
    const sent = server.count('POST', '/auth/refresh');
    await expect(t.client.restore()).resolves.toBe(false);
    expect(server.count('POST', '/auth/refresh')).toBe(sent);
  });

  it('a later process restores the session from the store', async () => {
    const store = memoryTokenStore();
    const first = tab(server, {}, { refreshTokenStore: store });
    await first.client.login(credentials);
    first.client.dispose();
    const second = tab(server, {}, { refreshTokenStore: store });
    await expect(second.client.restore()).resolves.toBe(true);
    await expect(second.client.me()).resolves.toMatchObject({ email: credentials.email });
  });

  it('logout sends the stored token and clears the store', async () => {
    const store = memoryTokenStore();
    const t = tab(server, {}, { refreshTokenStore: store });
    await t.client.login(credentials);
    const token = await store.get();
    await t.client.logout();
    expect(JSON.parse(server.log.at(-1)?.body ?? '{}')).toEqual({ refresh_token: token });
    expect(await store.get()).toBeNull();
    expect(server.bodyRefreshToken).toBeNull();
  });

  it('shares nothing by default: no BroadcastChannel is opened and no lock taken', async () => {
    const opens = vi.fn();
    vi.stubGlobal('BroadcastChannel', function BroadcastChannel() {
      opens();
    });
    vi.stubGlobal('navigator', { locks: { request: () => Promise.reject(new Error('no lock expected')) } });
    const client = createBatonClient({ baseUrl, fetch: server.fetch, refreshTokenStore: memoryTokenStore(), proactiveRefresh: false });
    opened.push(client);
    await client.login(credentials);
    await expect(client.refresh()).resolves.toMatchObject({ kind: 'refreshed' });
    expect(opens).not.toHaveBeenCalled();
  });

  it('outside a browser a missing baseUrl is a clear error at creation', () => {
    expect(() => createBatonClient({ fetch: server.fetch })).toThrow(/baseUrl is required/);
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
