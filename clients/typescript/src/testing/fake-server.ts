// A small in-memory stand-in for the Baton API, used by the unit tests through the client's
// injected `fetch` (no module mocking). It speaks just enough of the contract: bearer checks with
// problem bodies, a refresh endpoint whose answer a test can choose (including one that never
// answers), both refresh-token channels (cookie and body), and a request log. Exported as
// `@baton/client/testing` so that apps can test their UI without a server.
import type { ChannelLike, LockManagerLike, VisibilityLike } from '../client.js';

export interface LoggedRequest {
  method: string;
  path: string;
  authorization: string | null;
  credentials: RequestCredentials;
  body: string;
}

/** How POST /auth/refresh answers; `hang` never answers (until the request is aborted). */
export type RefreshMode = 'ok' | 'network' | 'hang' | 401 | 409 | 429 | 500 | 503;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function problem(status: number, code: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ type: 'about:blank', title: code, status, detail: code, code, ...extra }), {
    status,
    headers: { 'Content-Type': 'application/problem+json', ...headers },
  });
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' },
  });
}

export class FakeServer {
  readonly log: LoggedRequest[] = [];
  readonly valid = new Set<string>();
  refreshMode: RefreshMode = 'ok';
  logoutFails = false;
  /** Rejects every access token (to prove that a second 401 is final). */
  rejectAllTokens = false;
  /** Milliseconds every answer takes, and the refresh takes on top. */
  latency = 1;
  refreshLatency = 5;
  /** `expires_in` of every access token issued (seconds). */
  expiresIn = 900;
  /** A `Retry-After` header on 5xx refresh answers. */
  refreshRetryAfter: string | undefined;
  /** The live refresh token of the body channel (null: none issued, or revoked). */
  bodyRefreshToken: string | null = null;
  private issued = 0;
  readonly user = { id: 'u-1', email: 'ada@example.test', created_at: '2026-01-01T00:00:00Z' };

  readonly fetch = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const body = await request.text();
    this.log.push({
      method: request.method,
      path: url.pathname,
      authorization: request.headers.get('Authorization'),
      credentials: request.credentials,
      body,
    });
    await delay(this.latency);
    const route = `${request.method} ${url.pathname}`;
    switch (route) {
      case 'POST /auth/login': {
        const login = JSON.parse(body) as { email: string; password: string; refresh_token_in_body?: boolean };
        if (login.email !== this.user.email || login.password !== 'correct horse') return problem(401, 'invalid_credentials');
        return json(200, this.pair(login.refresh_token_in_body === true));
      }
      case 'POST /auth/register': {
        const { email } = JSON.parse(body) as { email: string };
        if (email === this.user.email) return problem(409, 'email_taken');
        return json(201, { id: 'u-2', email, created_at: '2026-01-02T00:00:00Z' });
      }
      case 'POST /auth/refresh': {
        await delay(this.refreshLatency);
        const presented = (JSON.parse(body) as { refresh_token?: string }).refresh_token;
        switch (this.refreshMode) {
          case 'ok':
            if (presented === undefined) return json(200, this.pair(false));
            if (presented !== this.bodyRefreshToken) return problem(401, 'refresh_token_invalid');
            return json(200, this.pair(true));
          case 'network':
            throw new TypeError('fetch failed');
          case 'hang':
            return new Promise<Response>((_, reject) => {
              request.signal.addEventListener('abort', () => {
                reject(request.signal.reason as Error);
              });
            });
          case 401:
            return problem(401, 'refresh_token_invalid');
          case 429:
            return problem(429, 'rate_limited', { retry_after: 7 }, { 'Retry-After': '7' });
          default:
            return problem(this.refreshMode, 'service_unavailable', {}, this.refreshRetryAfter === undefined ? {} : { 'Retry-After': this.refreshRetryAfter });
        }
      }
      case 'POST /auth/logout':
        if (this.logoutFails) throw new TypeError('fetch failed');
        if ((JSON.parse(body) as { refresh_token?: string }).refresh_token === this.bodyRefreshToken) this.bodyRefreshToken = null;
        return new Response(null, { status: 204 });
      case 'GET /auth/me':
        return this.authorized(request) ?? json(200, this.user);
      case 'GET /auth/sessions':
        return this.authorized(request) ?? json(200, []);
      case 'DELETE /auth/sessions':
        return this.authorized(request) ?? new Response(null, { status: 204 });
      case 'POST /notes':
        return this.authorized(request) ?? json(201, { echoed: JSON.parse(body) as unknown });
      default:
        return problem(404, 'not_found');
    }
  };

  /** Every access token issued so far expires now. */
  expireAccessTokens(): void {
    this.valid.clear();
  }

  count(method: string, path: string): number {
    return this.log.filter((r) => r.method === method && r.path === path).length;
  }

  private pair(inBody: boolean) {
    const access_token = `at-${++this.issued}`;
    this.valid.add(access_token);
    const pair = { access_token, token_type: 'Bearer', expires_in: this.expiresIn, refresh_expires_in: 3600 };
    if (!inBody) return pair;
    this.bodyRefreshToken = `rt-${this.issued}`;
    return { ...pair, refresh_token: this.bodyRefreshToken };
  }

  private authorized(request: Request): Response | null {
    const header = request.headers.get('Authorization');
    if (header === null) return problem(401, 'missing_token', {}, { 'WWW-Authenticate': 'Bearer' });
    const token = header.replace(/^Bearer /i, '');
    if (this.rejectAllTokens || !this.valid.has(token)) {
      return problem(401, 'token_expired', {}, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
    }
    return null;
  }
}

/** An in-process Web Locks stand-in shared by the "tabs" of one test. */
/** An in-process Web Locks stand-in shared by the "tabs" of one test. `hold(name)` takes the
 *  lock for a tab that never lets go (a frozen tab) until the returned function is called. A
 *  waiter's `signal` aborts its wait, as in the Web Locks API. */
export function fakeLocks(): LockManagerLike & { acquisitions: number; contended: number; aborted: number; hold(name: string): () => void } {
  const tails = new Map<string, Promise<unknown>>();
  const holders = new Map<string, number>();
  const manager = {
    acquisitions: 0,
    contended: 0,
    aborted: 0,
    hold(name: string): () => void {
      let release: () => void = () => undefined;
      const held = new Promise<void>((r) => {
        release = r;
      });
      void manager.request(name, {}, () => held);
      return release;
    },
    request<T>(name: string, options: { ifAvailable?: boolean; signal?: AbortSignal }, callback: (lock: unknown) => Promise<T>): Promise<T> {
      if (options.ifAvailable && (holders.get(name) ?? 0) > 0) {
        manager.contended++;
        return callback(null);
      }
      holders.set(name, (holders.get(name) ?? 0) + 1); // queued or held
      const previous = tails.get(name) ?? Promise.resolve();
      let granted = false;
      const waiting = previous.then(() => {
        if (options.signal?.aborted) throw options.signal.reason;
        granted = true;
        manager.acquisitions++;
        return callback({ name });
      });
      const run = options.signal
        ? Promise.race([
            waiting,
            new Promise<never>((_, reject) => {
              options.signal?.addEventListener('abort', () => {
                if (granted) return;
                manager.aborted++;
                reject(new DOMException('The lock request was aborted', 'AbortError'));
              });
            }),
          ])
        : waiting;
      // The next request's turn comes when this one's callback is done, or, for an aborted
      // request, when its turn is skipped: never earlier than the holder ahead of it.
      const settled = waiting.then(
        () => undefined,
        () => undefined,
      ).then(() => {
        holders.set(name, (holders.get(name) ?? 1) - 1);
      });
      tails.set(name, settled);
      return run;
    },
  };
  return manager;
}

/** A BroadcastChannel stand-in: messages reach every other member asynchronously, after
 *  `delayMs` (a slow channel: the lock can be granted before the message lands). */
export function fakeChannelBus(delayMs = 0): () => ChannelLike {
  const members = new Set<{ listeners: ((event: { data: unknown }) => void)[] }>();
  return () => {
    const self = { listeners: [] as ((event: { data: unknown }) => void)[] };
    members.add(self);
    return {
      postMessage(message: unknown) {
        const data = structuredClone(message);
        for (const m of members) {
          if (m === self) continue;
          setTimeout(() => {
            for (const l of m.listeners) l({ data });
          }, delayMs);
        }
      },
      addEventListener(_type: 'message', listener: (event: { data: unknown }) => void) {
        self.listeners.push(listener);
      },
      removeEventListener(_type: 'message', listener: (event: { data: unknown }) => void) {
        self.listeners = self.listeners.filter((l) => l !== listener);
      },
      close() {
        members.delete(self);
      },
    };
  };
}

/** A `document` stand-in for proactive refresh: `visibilityState` a test can flip. */
export function fakeDocument(initial: 'visible' | 'hidden' = 'visible'): VisibilityLike & { set(state: 'visible' | 'hidden'): void; listeners: number } {
  const listeners = new Set<() => void>();
  const doc = {
    visibilityState: initial as string,
    get listeners() {
      return listeners.size;
    },
    set(state: 'visible' | 'hidden') {
      doc.visibilityState = state;
      for (const l of [...listeners]) l();
    },
    addEventListener(_type: 'visibilitychange', listener: () => void) {
      listeners.add(listener);
    },
    removeEventListener(_type: 'visibilitychange', listener: () => void) {
      listeners.delete(listener);
    },
  };
  return doc;
}
