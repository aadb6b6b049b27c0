// The Baton client: a typed openapi-fetch client plus the session layer.
//
// - The access token lives in this closure only (never localStorage/sessionStorage/cookies). On
//   the cookie channel (browsers) the refresh token is an HttpOnly cookie JavaScript never sees;
//   on the body channel (Node, scripts) it goes to an injected RefreshTokenStore.
// - A 401 from any call but the token endpoints triggers ONE refresh, then ONE retry of the
//   original request (re-sent from a clone taken before it went out). A second 401 is final.
// - Only a 401 from POST /auth/refresh ends the session (contract section 6). Network errors,
//   timeouts, 5xx, 429 and 409 reject with RefreshUnavailableError, keep the session and start
//   a cooldown (Retry-After, else exponential) during which no refresh is sent: no retry storm.
// - Every wait is bounded: the refresh request (refreshTimeoutMs), the cross-tab lock
//   (lockTimeoutMs, then lockless), the hand-off from another tab (handoffWaitMs). The server's
//   reuse grace gives concurrent refreshes with one token the same successor, so the lock only
//   saves requests; it is never needed for correctness (a frozen tab holding it blocks no one).
// - Proactive refresh shortly before expiry (visible tabs only, with jitter); the reactive path
//   stays as the fallback.
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
  | { type: 'session-expired'; code: string | undefined }
  /** A refresh could not be done (network, timeout, 5xx, 429, 409); the session is kept and no
   *  refresh is sent for `error.retryAfter` seconds. */
  | { type: 'refresh-unavailable'; error: RefreshUnavailableError };
export type AuthEventType = AuthEvent['type'];
export type AuthEventOf<T extends AuthEventType> = Extract<AuthEvent, { type: T }>;

export type RefreshOutcome =
  | { kind: 'refreshed'; accessToken: string }
  | { kind: 'expired'; code: string | undefined }
  | { kind: 'unavailable'; error: RefreshUnavailableError };

/** The part of the Web Locks API the client uses (navigator.locks fits). With
 *  `ifAvailable: true` the callback gets `null` at once when another tab holds the lock. */
export interface LockManagerLike {
  request<T>(
    name: string,
    options: { ifAvailable?: boolean; signal?: AbortSignal },
    callback: (lock: unknown) => Promise<T>,
  ): Promise<T>;
}

/** The part of BroadcastChannel the client uses. */
export interface ChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  removeEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  close(): void;
}

/** The part of `document` the client uses: proactive refresh runs only in a visible tab. */
export interface VisibilityLike {
  readonly visibilityState: string;
  addEventListener(type: 'visibilitychange', listener: () => void): void;
  removeEventListener(type: 'visibilitychange', listener: () => void): void;
}

/** Where the body channel keeps the refresh token (a file, a keychain, a server-side session).
 *  Giving one switches the client to body delivery (`refresh_token_in_body: true`). */
export interface RefreshTokenStore {
  get(): string | null | Promise<string | null>;
  set(token: string | null): void | Promise<void>;
}

/** A RefreshTokenStore in memory (tests, short scripts). */
export function memoryTokenStore(initial: string | null = null): RefreshTokenStore {
  let token = initial;
  return {
    get: () => token,
    set: (t) => {
      token = t;
    },
  };
}

export interface ProactiveRefreshOptions {
  /** Refresh this long before the access token expires (ms; capped at a quarter of its life). */
  leadMs?: number;
  /** Up to this much earlier again, at random, so tabs and clients spread out (ms; capped at a
   *  tenth of its life). */
  jitterMs?: number;
}

export interface BatonClientOptions {
  /** API origin; default: the page's origin (same-origin deployment). Required outside a browser. */
  baseUrl?: string;
  /** Injected fetch (tests, Node adapters); default: globalThis.fetch. */
  fetch?: (request: Request) => Promise<Response>;
  /** Body delivery: the refresh token is kept here instead of in the HttpOnly cookie. */
  refreshTokenStore?: RefreshTokenStore;
  /** Cross-tab lock; default navigator.locks when present (cookie mode), `null` to disable. */
  locks?: LockManagerLike | null;
  /** Cross-tab channel; default a BroadcastChannel when present (cookie mode), `null` to disable. */
  channel?: ChannelLike | null;
  /** Visibility source for proactive refresh; default globalThis.document, `null`: always visible. */
  document?: VisibilityLike | null;
  /** Name of the lock and the channel (one per API origin). */
  name?: string;
  /** The refresh request is aborted after this long (ms, default 10 000). */
  refreshTimeoutMs?: number;
  /** Waiting for another tab's lock ends after this long; then this tab refreshes without the
   *  lock (ms, default 5 000). */
  lockTimeoutMs?: number;
  /** How long a tab that waited for another tab's refresh waits for its token to arrive over
   *  the channel before refreshing itself (ms, default 500). */
  handoffWaitMs?: number;
  /** Cooldown after an unavailable refresh without Retry-After: starts here, doubles per failure
   *  (ms, default 1 000 up to 30 000). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Refresh shortly before expiry (default on: lead 30 s, jitter 5 s); `false` turns it off. */
  proactiveRefresh?: ProactiveRefreshOptions | false;
}

type Message =
  | { type: 'refreshed'; accessToken: string; expiresAt: number }
  | { type: 'logout' };

export interface BatonClient {
  /** Typed client for every operation in the OpenAPI document, with the auth middleware. */
  readonly api: Client<paths>;
  /** The auth middleware, to put on other openapi-fetch clients of the same API. */
  readonly middleware: Middleware;
  readonly state: AuthState;
  isAuthenticated: () => boolean;
  /** When the access token in memory expires (ms since the epoch), or null. */
  expiresAt: () => number | null;
  /** Subscribe to one event type; returns the unsubscribe function. */
  on: <T extends AuthEventType>(type: T, listener: (event: AuthEventOf<T>) => void) => () => void;
  /** Subscribe to state changes (for React's useSyncExternalStore). */
  subscribe: (listener: () => void) => () => void;
  register: (body: RegisterRequest) => Promise<User>;
  /** Logs in; the refresh token goes to the cookie (or the store), the access token stays in memory. */
  login: (body: Pick<LoginRequest, 'email' | 'password'>) => Promise<void>;
  /** Revokes the session on the server (best effort) and always clears memory. Never throws. */
  logout: () => Promise<void>;
  /** Silent refresh on page load: true when the cookie (or store) still holds a live session.
   *  Never emits session-expired (a visitor without a cookie is simply not logged in). */
  restore: () => Promise<boolean>;
  /** One refresh, single-flight and cross-tab safe; answers at once during a cooldown. */
  refresh: () => Promise<RefreshOutcome>;
  me: () => Promise<User>;
  listSessions: () => Promise<Session[]>;
  revokeSession: (id: string) => Promise<void>;
  /** "Log out everywhere": revokes every session of the user, then clears memory. */
  revokeAllSessions: () => Promise<void>;
  /** Releases timers, listeners and the channel (React StrictMode, HMR, tests). Idempotent. */
  dispose: () => void;
}

interface Flight {
  promise: Promise<RefreshOutcome>;
  /** Whether a 401 from the refresh should emit session-expired (false for restore()). */
  announce: boolean;
}

type Timer = ReturnType<typeof setTimeout>;
const LOCK_BYPASS_MS = 60_000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createBatonClient(options: BatonClientOptions = {}): BatonClient {
  const g = globalThis as {
    location?: { origin: string };
    navigator?: { locks?: LockManagerLike };
    document?: VisibilityLike;
  };
  const baseUrl = options.baseUrl ?? g.location?.origin;
  if (baseUrl === undefined) throw new TypeError('createBatonClient: baseUrl is required outside a browser');
  const fetchImpl = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  const store = options.refreshTokenStore ?? null;
  const name = options.name ?? 'baton-auth';
  const lockName = `${name}:refresh`;
  const handoffWaitMs = options.handoffWaitMs ?? 500;
  const refreshTimeoutMs = options.refreshTimeoutMs ?? 10_000;
  const lockTimeoutMs = options.lockTimeoutMs ?? 5_000;
  const backoffInitialMs = options.backoff?.initialMs ?? 1_000;
  const backoffMaxMs = options.backoff?.maxMs ?? 30_000;
  const proactive = options.proactiveRefresh === false ? null : { leadMs: 30_000, jitterMs: 5_000, ...options.proactiveRefresh };
  // Tabs share a cookie, so they coordinate; a process with its own token store has nothing to share.
  const locks = options.locks !== undefined ? options.locks : store ? null : (g.navigator?.locks ?? null);
  const ownChannel = options.channel === undefined && !store && typeof BroadcastChannel === 'function';
  const channel: ChannelLike | null = ownChannel ? new BroadcastChannel(name) : (options.channel ?? null);
  if (ownChannel) (channel as { unref?: () => void }).unref?.(); // Node: never keeps the process alive
  const doc = options.document !== undefined ? options.document : (g.document ?? null);

  let accessToken: string | null = null;
  let expiresAt: number | null = null;
  let refreshAt = 0;
  let state: AuthState = 'unknown';
  /** Bumped by logout and login: a refresh in flight across them must not log back in. */
  let epoch = 0;
  let flight: Flight | null = null;
  let failures = 0;
  let cooldownUntil = 0;
  let lastUnavailable: RefreshUnavailableError | null = null;
  let proactiveTimer: Timer | undefined;
  let proactiveDue = false;
  let disposed = false;
  /** Until then, refresh without waiting for the lock: it just timed out (a frozen or hung tab
   *  holds it), and waiting again on every refresh would cost each one lockTimeoutMs. */
  let lockBypassUntil = 0;
  const inFlight = new Set<AbortController>();
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
  function setToken(token: string | null, expiry: number | null = null): void {
    accessToken = token;
    expiresAt = token === null ? null : expiry;
    setState(token === null ? 'anonymous' : 'authenticated');
    for (const w of [...tokenWaiters]) w();
    if (expiresAt !== null) {
      const life = Math.max(0, expiresAt - Date.now());
      const lead = Math.min(proactive?.leadMs ?? 0, life / 4);
      refreshAt = expiresAt - lead - Math.random() * Math.min(proactive?.jitterMs ?? 0, life / 10);
    }
    schedule();
  }
  function setPair(pair: TokenPair): void {
    setToken(pair.access_token, Date.now() + pair.expires_in * 1000);
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
  function settled(): void {
    failures = 0;
    cooldownUntil = 0;
    lastUnavailable = null;
  }

  // Proactive refresh: one timer, re-armed whenever the token or the cooldown changes.
  function schedule(): void {
    clearTimeout(proactiveTimer);
    proactiveTimer = undefined;
    if (proactive === null || disposed || expiresAt === null) return;
    const at = Math.max(refreshAt, cooldownUntil);
    if (at >= expiresAt) return; // the reactive path takes over after expiry
    proactiveTimer = setTimeout(fireProactive, Math.min(2 ** 31 - 1, Math.max(0, at - Date.now())));
    (proactiveTimer as { unref?: () => void }).unref?.(); // never keeps a Node process alive
  }
  function fireProactive(): void {
    proactiveTimer = undefined;
    if (doc?.visibilityState === 'hidden') {
      proactiveDue = true; // hidden tabs leave it to a visible one, or to their next call
      return;
    }
    proactiveDue = false;
    void refreshOnce(accessToken, true);
  }
  function onVisibility(): void {
    if (proactiveDue && doc?.visibilityState !== 'hidden' && accessToken !== null) fireProactive();
  }
  doc?.addEventListener('visibilitychange', onVisibility);

  function onMessage(event: { data: unknown }): void {
    const m = event.data as Partial<Message> | null;
    if (m?.type === 'refreshed' && typeof m.accessToken === 'string') {
      settled();
      setToken(m.accessToken, typeof m.expiresAt === 'number' ? m.expiresAt : null);
      emit({ type: 'refreshed', source: 'other-tab' });
    } else if (m?.type === 'logout') {
      epoch++;
      setToken(null);
      emit({ type: 'logout', source: 'other-tab' });
    }
  }
  channel?.addEventListener('message', onMessage);

  // The token endpoints go through a client WITHOUT the middleware: the refresh call can never be
  // intercepted, and a 401 from login is an answer, not an expiry.
  const bare = createClient<paths>({ baseUrl, fetch: fetchImpl, credentials: store ? 'omit' : 'include' });

  const replaced = (stale: string | null) => accessToken !== null && accessToken !== stale;

  /** Runs `fn` with a deadline: the signal aborts the request, and the race ends the wait even
   *  when an injected fetch ignores the signal. */
  async function bounded<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const abort = new AbortController();
    inFlight.add(abort);
    let timer: Timer | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const e = new DOMException('The refresh timed out', 'TimeoutError');
        abort.abort(e);
        reject(e);
      }, refreshTimeoutMs);
    });
    try {
      return await Promise.race([fn(abort.signal), deadline]);
    } finally {
      clearTimeout(timer);
      inFlight.delete(abort);
    }
  }

  async function refreshNow(stale: string | null, started: number, f: Flight, waited: boolean): Promise<RefreshOutcome> {
    // Did another tab (via the channel) or an earlier flight already replace the token that failed?
    // A tab that had to wait for the lock knows another tab was refreshing: that tab posted its
    // token before releasing the lock, but the message and the lock grant travel separately, so
    // give the message a moment to land. Otherwise one macrotask is enough.
    if (channel !== null && !replaced(stale)) {
      await (waited ? tokenChange(handoffWaitMs) : sleep(0));
    }
    if (replaced(stale) && accessToken !== null) return { kind: 'refreshed', accessToken };
    const expired = (code: string | undefined): RefreshOutcome => {
      // The only definitive answer: the session is over (unless the user logged out or in
      // meanwhile: then this answer is about a session that is already gone).
      if (epoch !== started) return { kind: 'expired', code };
      setToken(null);
      if (f.announce) emit({ type: 'session-expired', code });
      return { kind: 'expired', code };
    };
    let result;
    try {
      const presented = store ? await store.get() : undefined;
      if (presented === null) return expired(undefined);
      result = await bounded((signal) =>
        bare.POST('/auth/refresh', { body: presented === undefined ? {} : { refresh_token: presented }, cache: 'no-store', signal }),
      );
    } catch (cause) {
      const timedOut = cause instanceof DOMException && cause.name === 'TimeoutError';
      return { kind: 'unavailable', error: unavailable(timedOut ? ApiError.timeout(cause) : ApiError.network(cause)) };
    }
    const { data, response } = result;
    if (data !== undefined && response.ok) {
      if (epoch !== started) return { kind: 'expired', code: undefined };
      if (store && data.refresh_token !== undefined) await store.set(data.refresh_token);
      setPair(data);
      if (expiresAt !== null) post({ type: 'refreshed', accessToken: data.access_token, expiresAt });
      emit({ type: 'refreshed', source: 'this-tab' });
      return { kind: 'refreshed', accessToken: data.access_token };
    }
    const error = await ApiError.fromResponse(response, result.error);
    if (response.status === 401) {
      if (store && epoch === started) await store.set(null);
      return expired(error.code);
    }
    return { kind: 'unavailable', error: unavailable(error) };
  }

  /** The refresh under the cross-tab lock when there is one. The lock only saves requests: when
   *  waiting for it times out (a frozen or hung tab holds it) or the platform refuses it, the
   *  refresh runs without it, which the server's reuse grace makes safe. */
  async function coordinated(run: (waited: boolean) => Promise<RefreshOutcome>): Promise<RefreshOutcome> {
    if (locks === null || Date.now() < lockBypassUntil) return run(false);
    const progress = { ran: false };
    const go = (waited: boolean) => {
      progress.ran = true;
      return run(waited);
    };
    try {
      return await locks.request(lockName, { ifAvailable: true }, async (lock) => {
        if (lock !== null) return go(false);
        const abort = new AbortController();
        const timer = setTimeout(() => {
          lockBypassUntil = Date.now() + LOCK_BYPASS_MS;
          abort.abort();
        }, lockTimeoutMs);
        try {
          return await locks.request(lockName, { signal: abort.signal }, () => {
            clearTimeout(timer);
            return go(true);
          });
        } finally {
          clearTimeout(timer);
        }
      });
    } catch (e) {
      if (progress.ran) throw e;
      return go(false);
    }
  }

  function refreshOnce(stale: string | null, announce: boolean): Promise<RefreshOutcome> {
    if (flight) {
      flight.announce ||= announce;
      return flight.promise;
    }
    const now = Date.now();
    if (lastUnavailable !== null && now < cooldownUntil) {
      // No request during the cooldown: the caller gets the same retryable error at once.
      const error = new RefreshUnavailableError(lastUnavailable.message, {
        kind: lastUnavailable.kind,
        status: lastUnavailable.status,
        problem: lastUnavailable.problem,
        retryAfter: Math.ceil((cooldownUntil - now) / 1000),
        cause: lastUnavailable,
      });
      return Promise.resolve({ kind: 'unavailable', error });
    }
    const started = epoch;
    const f: Flight = { promise: Promise.resolve({ kind: 'expired', code: undefined }), announce };
    f.promise = coordinated((waited) => refreshNow(stale, started, f, waited))
      .then((outcome) => {
        if (outcome.kind === 'unavailable') {
          failures++;
          const retryAfter = outcome.error.retryAfter;
          cooldownUntil =
            Date.now() + (retryAfter !== undefined ? retryAfter * 1000 : Math.min(backoffMaxMs, backoffInitialMs * 2 ** (failures - 1)));
          lastUnavailable = outcome.error;
          schedule();
          emit({ type: 'refresh-unavailable', error: outcome.error });
        } else {
          settled();
        }
        return outcome;
      })
      .finally(() => {
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
      // Don't send a token that a running refresh is about to replace (the wait is bounded).
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
    settled();
    setToken(null);
    try {
      const presented = store ? await store.get() : undefined;
      if (store) await store.set(null);
      await bare.POST('/auth/logout', { body: presented ? { refresh_token: presented } : {} });
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
    expiresAt: () => expiresAt,
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
      const pair = await call(() =>
        bare.POST('/auth/login', { body: store ? { email, password, refresh_token_in_body: true } : { email, password } }),
      );
      if (store) await store.set(pair.refresh_token ?? null);
      epoch++; // a refresh still in flight belongs to the previous session
      settled();
      setPair(pair);
      if (expiresAt !== null) post({ type: 'refreshed', accessToken: pair.access_token, expiresAt });
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
    dispose() {
      if (disposed) return;
      disposed = true;
      schedule(); // clears the proactive timer
      for (const a of inFlight) a.abort();
      doc?.removeEventListener('visibilitychange', onVisibility);
      channel?.removeEventListener('message', onMessage);
      if (ownChannel) channel?.close();
      eventListeners.clear();
      stateListeners.clear();
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
