// The Baton browser client: a typed openapi-fetch client plus the session layer.
//
// - The access token lives in this closure only (never localStorage/sessionStorage/cookies).
// - The refresh token is an HttpOnly cookie the browser sends to /auth/*; JavaScript never sees it.
// - A 401 from any call but the token endpoints triggers ONE refresh (single flight in the tab,
//   Web Locks across tabs, BroadcastChannel to hand the new access token to the other tabs), then
//   ONE retry of the original request (re-sent from a clone taken before it went out). A second
//   401 is final.
// - Only a 401 from POST /auth/refresh ends the session (contract section 6); network errors,
//   5xx, 429 and the like reject with RefreshUnavailableError and keep the session.
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import { ApiError, RefreshUnavailableError } from './errors.js';
import type { LoginRequest, RegisterRequest, Session, TokenPair, User, paths } from './types.js';

/** Endpoints that authenticate with the cookie or credentials, never with the access token.
 *  Their 401s are answers, not "token expired", so the middleware leaves them alone. */
export const TOKEN_ENDPOINTS: ReadonlySet<string> = new Set([
  '/auth/login',
  '/auth/register',
  '/auth/refresh',
  '/auth/logout',
]);

export type AuthState = 'unknown' | 'authenticated' | 'anonymous';

export type AuthEvent =
  | { type: 'login' }
  | { type: 'refreshed'; source: 'this-tab' | 'other-tab' }
  | { type: 'logout'; source: 'this-tab' | 'other-tab' }
  /** The refresh was refused (401): the session is over. The UI says
   *  "Your session has expired. Please log in again." */
  | { type: 'session-expired'; code: string | undefined };
export type AuthEventType = AuthEvent['type'];
export type AuthEventOf<T extends AuthEventType> = Extract<AuthEvent, { type: T }>;

export type RefreshOutcome =
  | { kind: 'refreshed'; accessToken: string }
  | { kind: 'expired'; code: string | undefined }
  | { kind: 'unavailable'; error: RefreshUnavailableError };

/** The part of the Web Locks API the client uses (navigator.locks fits). With
 *  `ifAvailable: true` the callback gets `null` at once when another tab holds the lock. */
export interface LockManagerLike {
  request<T>(name: string, options: { ifAvailable?: boolean }, callback: (lock: unknown) => Promise<T>): Promise<T>;
}

/** The part of BroadcastChannel the client uses. */
export interface ChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  close(): void;
}

export interface BatonClientOptions {
  /** API origin; default: the page's origin (same-origin deployment). */
  baseUrl?: string;
  /** Injected fetch (tests); default: globalThis.fetch. */
  fetch?: (request: Request) => Promise<Response>;
  /** Cross-tab lock; default navigator.locks when present, `null` to disable. */
  locks?: LockManagerLike | null;
  /** Cross-tab channel; default a BroadcastChannel when present, `null` to disable. */
  channel?: ChannelLike | null;
  /** Name of the lock and the channel (one per API origin). */
  name?: string;
  /** How long a tab that waited for another tab's refresh waits for its token to arrive over
   *  the channel before refreshing itself (ms). */
  handoffWaitMs?: number;
}

type Message =
  | { type: 'refreshed'; accessToken: string }
  | { type: 'logout' };

export interface BatonClient {
  /** Typed client for every operation in the OpenAPI document, with the auth middleware. */
  readonly api: Client<paths>;
  /** The auth middleware, to put on other openapi-fetch clients of the same API. */
  readonly middleware: Middleware;
  readonly state: AuthState;
  isAuthenticated: () => boolean;
  /** Subscribe to one event type; returns the unsubscribe function. */
  on: <T extends AuthEventType>(type: T, listener: (event: AuthEventOf<T>) => void) => () => void;
  /** Subscribe to state changes (for React's useSyncExternalStore). */
  subscribe: (listener: () => void) => () => void;
  register: (body: RegisterRequest) => Promise<User>;
  /** Logs in; the refresh token goes to the HttpOnly cookie, the access token stays in memory. */
  login: (body: Pick<LoginRequest, 'email' | 'password'>) => Promise<void>;
  /** Revokes the session on the server (best effort) and always clears memory. Never throws. */
  logout: () => Promise<void>;
  /** Silent refresh on page load: true when the cookie still holds a live session. Never emits
   *  session-expired (a visitor without a cookie is simply not logged in). */
  restore: () => Promise<boolean>;
  /** One refresh, single-flight and cross-tab safe. */
  refresh: () => Promise<RefreshOutcome>;
  me: () => Promise<User>;
  listSessions: () => Promise<Session[]>;
  revokeSession: (id: string) => Promise<void>;
  /** "Log out everywhere": revokes every session of the user, then clears memory. */
  revokeAllSessions: () => Promise<void>;
  /** Stops listening to other tabs. */
  close: () => void;
}

interface Flight {
  promise: Promise<RefreshOutcome>;
  /** Whether a 401 from the refresh should emit session-expired (false for restore()). */
  announce: boolean;
}

export function createBatonClient(options: BatonClientOptions = {}): BatonClient {
  const baseUrl = options.baseUrl ?? (globalThis as { location?: { origin: string } }).location?.origin ?? '';
  const fetchImpl = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  const name = options.name ?? 'baton-auth';
  const handoffWaitMs = options.handoffWaitMs ?? 500;
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  const locks = options.locks === undefined ? (nav?.locks ?? null) : options.locks;
  const channel =
    options.channel === undefined
      ? typeof BroadcastChannel === 'function'
        ? new BroadcastChannel(name)
        : null
      : options.channel;

  let accessToken: string | null = null;
  let state: AuthState = 'unknown';
  /** Bumped by logout: a refresh that was in flight across a logout must not log back in. */
  let epoch = 0;
  let flight: Flight | null = null;
  const eventListeners = new Set<(event: AuthEvent) => void>();
  const stateListeners = new Set<() => void>();

  function emit(event: AuthEvent): void {
    for (const l of [...eventListeners]) l(event);
  }
  function setState(next: AuthState): void {
    if (state === next) return;
    state = next;
    for (const l of [...stateListeners]) l();
  }
  /** Resolved whenever the token changes (used to wait for another tab's hand-off). */
  const tokenWaiters = new Set<() => void>();
  function setToken(token: string | null): void {
    accessToken = token;
    setState(token === null ? 'anonymous' : 'authenticated');
    for (const w of [...tokenWaiters]) w();
  }
  function tokenChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        tokenWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      tokenWaiters.add(done);
    });
  }
  function post(message: Message): void {
    try {
      channel?.postMessage(message);
    } catch {
      // a closed channel only costs the other tabs a refresh of their own
    }
  }

  channel?.addEventListener('message', (event) => {
    const m = event.data as Partial<Message> | null;
    if (m?.type === 'refreshed' && typeof m.accessToken === 'string') {
      setToken(m.accessToken);
      emit({ type: 'refreshed', source: 'other-tab' });
    } else if (m?.type === 'logout') {
      epoch++;
      setToken(null);
      emit({ type: 'logout', source: 'other-tab' });
    }
  });

  // The token endpoints go through a client WITHOUT the middleware: the refresh call can never be
  // intercepted, and a 401 from login is an answer, not an expiry.
  const bare = createClient<paths>({ baseUrl, fetch: fetchImpl, credentials: 'include' });

  const replaced = (stale: string | null) => accessToken !== null && accessToken !== stale;

  async function refreshNow(stale: string | null, started: number, f: Flight, waited: boolean): Promise<RefreshOutcome> {
    // Did another tab (via the channel) or an earlier flight already replace the token that failed?
    // A tab that had to wait for the lock knows another tab was refreshing: that tab posted its
    // token before releasing the lock, but the message and the lock grant travel separately, so
    // give the message a moment to land. Otherwise one macrotask is enough.
    if (channel !== null && !replaced(stale)) {
      await (waited ? tokenChange(handoffWaitMs) : new Promise((resolve) => setTimeout(resolve, 0)));
    }
    if (replaced(stale) && accessToken !== null) return { kind: 'refreshed', accessToken };
    let result;
    try {
      result = await bare.POST('/auth/refresh', { body: {}, cache: 'no-store' });
    } catch (cause) {
      return { kind: 'unavailable', error: unavailable(ApiError.network(cause)) };
    }
    const { data, response } = result;
    if (data !== undefined && response.ok) {
      if (epoch !== started) return { kind: 'expired', code: undefined };
      const pair: TokenPair = data;
      setToken(pair.access_token);
      post({ type: 'refreshed', accessToken: pair.access_token });
      emit({ type: 'refreshed', source: 'this-tab' });
      return { kind: 'refreshed', accessToken: pair.access_token };
    }
    const error = await ApiError.fromResponse(response, result.error);
    if (response.status === 401) {
      // The only definitive answer: the session is over (unless the user logged out or in
      // meanwhile: then this answer is about a session that is already gone).
      if (epoch !== started) return { kind: 'expired', code: error.code };
      setToken(null);
      if (f.announce) emit({ type: 'session-expired', code: error.code });
      return { kind: 'expired', code: error.code };
    }
    return { kind: 'unavailable', error: unavailable(error) };
  }

  function refreshOnce(stale: string | null, announce: boolean): Promise<RefreshOutcome> {
    if (flight) {
      flight.announce ||= announce;
      return flight.promise;
    }
    const started = epoch;
    const f: Flight = { promise: Promise.resolve({ kind: 'expired', code: undefined }), announce };
    const lockName = `${name}:refresh`;
    const run = (waited: boolean) => refreshNow(stale, started, f, waited);
    const locked = locks
      ? locks.request(lockName, { ifAvailable: true }, (lock) =>
          lock !== null ? run(false) : locks.request(lockName, {}, () => run(true)),
        )
      : run(false);
    f.promise = locked.finally(() => {
      if (flight === f) flight = null;
    });
    flight = f;
    return f.promise;
  }

  /** Request clones kept until the response is in, so a retry can re-send the body. */
  const pending = new Map<string, { retry: Request; token: string | null }>();

  const middleware: Middleware = {
    async onRequest({ request, schemaPath, id }) {
      if (TOKEN_ENDPOINTS.has(schemaPath)) return undefined;
      // Don't send a token that a running refresh is about to replace.
      if (flight) await flight.promise.catch(() => undefined);
      const token = accessToken;
      const headers = new Headers(request.headers);
      if (token !== null) headers.set('Authorization', `Bearer ${token}`);
      const withAuth = new Request(request, { headers });
      pending.set(id, { retry: withAuth.clone(), token });
      return withAuth;
    },
    async onResponse({ response, schemaPath, id }) {
      const sent = pending.get(id);
      pending.delete(id);
      if (sent === undefined || response.status !== 401 || TOKEN_ENDPOINTS.has(schemaPath)) {
        return undefined;
      }
      let token = accessToken;
      if (token === null || token === sent.token) {
        const outcome = await refreshOnce(sent.token, true);
        if (outcome.kind === 'expired') return undefined; // the 401 stands; the event is out
        if (outcome.kind === 'unavailable') throw outcome.error;
        token = outcome.accessToken;
      }
      const headers = new Headers(sent.retry.headers);
      headers.set('Authorization', `Bearer ${token}`);
      // Straight to fetch, not through the middleware: a second 401 is final.
      return fetchImpl(new Request(sent.retry, { headers }));
    },
    onError({ id }) {
      pending.delete(id);
      return undefined;
    },
  };

  const api = createClient<paths>({ baseUrl, fetch: fetchImpl });
  api.use(middleware);

  async function logout(): Promise<void> {
    epoch++;
    setToken(null);
    try {
      await bare.POST('/auth/logout', { body: {} });
    } catch {
      // Memory is already cleared; the server-side family expires on its own.
    }
    post({ type: 'logout' });
    emit({ type: 'logout', source: 'this-tab' });
  }

  /** Runs a typed call and turns a failure into an ApiError. */
  async function call<T>(
    run: () => Promise<{ data?: T; error?: unknown; response: Response }>,
  ): Promise<T> {
    let result;
    try {
      result = await run();
    } catch (e) {
      throw e instanceof ApiError ? e : ApiError.network(e);
    }
    if (!result.response.ok) throw await ApiError.fromResponse(result.response, result.error ?? null);
    return result.data as T;
  }

  return {
    api,
    middleware,
    get state() {
      return state;
    },
    isAuthenticated: () => accessToken !== null,
    on(type, listener) {
      const wrapped = (event: AuthEvent) => {
        if (event.type === type) listener(event as AuthEventOf<typeof type>);
      };
      eventListeners.add(wrapped);
      return () => eventListeners.delete(wrapped);
    },
    subscribe(listener) {
      stateListeners.add(listener);
      return () => stateListeners.delete(listener);
    },
    register: (body) => call(() => bare.POST('/auth/register', { body })),
    async login({ email, password }) {
      const pair = await call(() => bare.POST('/auth/login', { body: { email, password } }));
      epoch++; // a refresh still in flight belongs to the previous session
      setToken(pair.access_token);
      post({ type: 'refreshed', accessToken: pair.access_token });
      emit({ type: 'login' });
    },
    logout,
    async restore() {
      const outcome = await refreshOnce(accessToken, false);
      if (outcome.kind === 'unavailable') {
        if (state === 'unknown') setState('anonymous');
        throw outcome.error;
      }
      return outcome.kind === 'refreshed';
    },
    refresh: () => refreshOnce(accessToken, true),
    me: () => call(() => api.GET('/auth/me')),
    listSessions: () => call(() => api.GET('/auth/sessions')),
    revokeSession: (id) =>
      call(() => api.DELETE('/auth/sessions/{id}', { params: { path: { id } } })).then(() => undefined),
    async revokeAllSessions() {
      await call(() => api.DELETE('/auth/sessions'));
      await logout(); // the family is gone already; this clears memory and the cookie
    },
    close() {
      channel?.close();
    },
  };
}

function unavailable(error: ApiError): RefreshUnavailableError {
  return new RefreshUnavailableError(error.message, {
    kind: error.kind,
    status: error.status,
    problem: error.problem,
    retryAfter: error.retryAfter,
    cause: error,
  });
}
