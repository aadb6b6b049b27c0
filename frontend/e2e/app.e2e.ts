// End-to-end: the built app served by the real Rust server, driven in headless Chromium.
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  PASSWORD,
  accessibilityViolations,
  hideTabs,
  launchChromium,
  logIn as logInAt,
  registerViaApi as registerAt,
  screenshot as save,
  seeProfile,
  startServer,
  track,
  type RunningServer,
  type Tracked,
} from './harness';

const EXPIRED = 'Your session has expired. Please log in again.';
const COOKIE = '__Secure-baton_refresh';

let server: RunningServer | undefined;
let browser: Browser | undefined;
let origin: string;
/** How long until an access token is refused: TTL + leeway from the server's configuration. */
let expiryMs: number;
const contexts: BrowserContext[] = [];
const tracked: Tracked[] = [];
let userSeq = 0;

/** Every page of the app is screenshotted and checked with axe-core at the same moment. */
async function screenshot(page: Page, name: string): Promise<void> {
  await save(page, name);
  expect(await accessibilityViolations(page), `accessibility of ${name}`).toEqual([]);
}

function newEmail(): string {
  return `e2e-${Date.now()}-${++userSeq}@example.test`;
}

async function newPage(context?: BrowserContext, allow: readonly number[] = []): Promise<Tracked> {
  let ctx = context;
  if (ctx === undefined) {
    if (browser === undefined) throw new Error('no browser');
    ctx = await browser.newContext({ viewport: { width: 1024, height: 720 } });
    contexts.push(ctx);
    // These scenarios prove the reactive path (401 → refresh → retry); in a visible tab the
    // client would refresh ahead of expiry instead (e2e/resilience.e2e.ts covers that).
    await hideTabs(ctx);
  }
  const t = track(await ctx.newPage(), allow);
  tracked.push(t);
  return t;
}

function registerViaApi(email: string): Promise<void> {
  return registerAt(origin, email);
}

function logIn(page: Page, email: string, path = '/login'): Promise<void> {
  return logInAt(page, origin, email, path);
}

async function waitPastAccessTtl(): Promise<void> {
  await new Promise((r) => setTimeout(r, expiryMs));
}

async function refreshCookie(context: BrowserContext) {
  return (await context.cookies()).find((c) => c.name === COOKIE);
}

beforeAll(async () => {
  const started = await startServer();
  server = started;
  origin = started.origin;
  const config = (await (await fetch(`${origin}/.well-known/auth-configuration`)).json()) as {
    access_token_ttl: number;
    access_token_leeway: number;
  };
  expiryMs = (config.access_token_ttl + config.access_token_leeway) * 1000 + 1500;
  console.log(`server ${origin}; access tokens refused after ${expiryMs} ms; log ${started.log}`);
  browser = await launchChromium();
});

afterEach(async () => {
  const errors = tracked.flatMap((t) => t.consoleErrors);
  tracked.length = 0;
  await Promise.all(contexts.splice(0).map((c) => c.close()));
  expect(errors, 'console errors').toEqual([]);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe('session lifecycle in the browser', () => {
  it('register → login → profile; the refresh token never reaches JavaScript or storage', async () => {
    const { page } = await newPage();
    const email = newEmail();
    await page.goto(`${origin}/register`);
    await page.getByRole('heading', { name: 'Create an account' }).waitFor();
    await screenshot(page, 'register');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByText(`Account created for ${email}`).waitFor();
    expect(new URL(page.url()).pathname).toBe('/login');
    await screenshot(page, 'login');

    // keyboard only: the heading has the focus, Tab reaches the fields, Enter submits
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('page-title');
    const loginResponse = page.waitForResponse((r) => r.url().endsWith('/auth/login'));
    await page.keyboard.press('Tab');
    await page.keyboard.type(email);
    await page.keyboard.press('Tab');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    const pair = (await (await loginResponse).json()) as { access_token: string; refresh_token?: string };
    expect(pair.refresh_token).toBeUndefined();
    await seeProfile(page, email);
    expect(new URL(page.url()).pathname).toBe('/profile');
    await screenshot(page, 'profile');

    const cookie = await refreshCookie(page.context());
    expect(cookie, 'the refresh cookie is set').toBeDefined();
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/auth' });
    const seen = await page.evaluate(() => ({
      cookie: document.cookie,
      local: Object.entries(localStorage),
      session: Object.entries(sessionStorage),
    }));
    expect(seen.cookie).not.toContain(COOKIE);
    expect(seen.cookie).not.toContain(cookie?.value ?? '<none>');
    expect(seen.local).toEqual([]);
    expect(seen.session).toEqual([]);
    expect(JSON.stringify(seen)).not.toContain(pair.access_token);
  });

  it('shows the problem bodies: email taken, wrong password, throttled with the wait', async () => {
    const { page } = await newPage(undefined, [409, 429]); // provoked on purpose below
    const email = newEmail();
    await registerViaApi(email);
    await page.goto(`${origin}/register`);
    await page.getByLabel('Email').fill(email.toUpperCase());
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('alert').filter({ hasText: 'An account with this email already exists' }).waitFor();
    await screenshot(page, 'register-email-taken');

    await page.goto(`${origin}/login`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Wrong email or password.' }).waitFor();
    // the error takes the focus so that it is announced
    expect(await page.evaluate(() => document.activeElement?.getAttribute('role'))).toBe('alert');
    await screenshot(page, 'login-wrong-password');

    // Throttling is off on the shared server; a second one allowing 2 failed logins per account and
    // address gives the real 429 (Retry-After header and retry_after in the body).
    const throttled = await startServer(
      { BATON_RATE_LIMITS: 'on', BATON_RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT_AND_ADDRESS: '2' },
      'server-throttled',
    );
    try {
      await page.goto(`${throttled.origin}/login`);
      const answers: number[] = [];
      page.on('response', (r) => {
        if (r.url().endsWith('/auth/login')) answers.push(r.status());
      });
      for (let i = 0; i < 3; i++) {
        await page.getByLabel('Email').fill('nobody@example.test');
        await page.getByLabel('Password').fill(`wrong password ${i}`);
        const answered = page.waitForResponse((r) => r.url().endsWith('/auth/login'));
        await page.getByRole('button', { name: 'Log in' }).click();
        await answered;
      }
      expect(answers).toEqual([401, 401, 429]);
      await page.getByRole('alert').filter({ hasText: /Too many attempts\. Please wait \d+ seconds? and try again\./ }).waitFor();
      await screenshot(page, 'login-throttled');
    } finally {
      await throttled.stop();
    }
  });

  it('past the access TTL: one 401, exactly one refresh, the retry shows the data and no error', async () => {
    const t = await newPage();
    const { page } = t;
    const email = newEmail();
    await registerViaApi(email);
    await logIn(page, email);
    await seeProfile(page, email);
    await waitPastAccessTtl();
    const before = t.exchanges.length;
    const retried = page.waitForResponse((r) => r.url().endsWith('/auth/me') && r.status() === 200);
    await page.getByRole('button', { name: 'Reload profile' }).click();
    await retried;
    await seeProfile(page, email);
    const after = t.exchanges.slice(before).map((e) => `${e.method} ${e.path} ${e.status}`);
    expect(after).toEqual(['GET /auth/me 401', 'POST /auth/refresh 200', 'GET /auth/me 200']);
    expect(await page.getByRole('alert').count()).toBe(0);
  });

  it('two tabs expiring together both succeed and the session is not revoked', async () => {
    const first = await newPage();
    const email = newEmail();
    await registerViaApi(email);
    await logIn(first.page, email);
    await seeProfile(first.page, email);
    const second = await newPage(first.page.context());
    await second.page.goto(`${origin}/profile`);
    await seeProfile(second.page, email);
    await waitPastAccessTtl();
    const before = [first.exchanges.length, second.exchanges.length] as const;
    // "At the same moment": each tab's next /auth/me is held until both have been sent, so both
    // carry the expired token and both get the 401, whatever the order of the clicks.
    let arrived = 0;
    let releaseBoth: () => void = () => undefined;
    const bothSent = new Promise<void>((r) => {
      releaseBoth = r;
    });
    const hold = async (route: { continue(): Promise<void> }) => {
      if (++arrived === 2) releaseBoth();
      await bothSent;
      await route.continue();
    };
    await first.page.route('**/auth/me', hold, { times: 1 });
    await second.page.route('**/auth/me', hold, { times: 1 });
    const retried = Promise.all([
      first.page.waitForResponse((r) => r.url().endsWith('/auth/me') && r.status() === 200),
      second.page.waitForResponse((r) => r.url().endsWith('/auth/me') && r.status() === 200),
    ]);
    await Promise.all([
      first.page.getByRole('button', { name: 'Reload profile' }).click(),
      second.page.getByRole('button', { name: 'Reload profile' }).click(),
    ]);
    await retried;
    await seeProfile(first.page, email);
    await seeProfile(second.page, email);
    const refreshes = [
      ...first.exchanges.slice(before[0]),
      ...second.exchanges.slice(before[1]),
    ].filter((e) => e.path === '/auth/refresh');
    const seq = (t: Tracked, from: number) => t.exchanges.slice(from).map((e) => `${e.method} ${e.path} ${e.status}`).join(' | ');
    console.log(`two tabs: ${refreshes.length} refresh(es); tab 1: ${seq(first, before[0])}; tab 2: ${seq(second, before[1])}`);
    // both tabs really were refused: each saw its own 401 before succeeding
    expect(first.exchanges.slice(before[0]).some((e) => e.path === '/auth/me' && e.status === 401)).toBe(true);
    expect(second.exchanges.slice(before[1]).some((e) => e.path === '/auth/me' && e.status === 401)).toBe(true);
    expect(refreshes.every((e) => e.status === 200)).toBe(true);
    expect(refreshes.length).toBe(1); // Web Locks + BroadcastChannel: the second tab reuses the first's token
    expect(await first.page.getByText(EXPIRED).count()).toBe(0);
    expect(await second.page.getByText(EXPIRED).count()).toBe(0);

    // not revoked: the session goes on, in both tabs, with fresh refreshes
    await first.page.goto(`${origin}/sessions`);
    await first.page.getByTestId('session-row').first().waitFor();
    expect(await first.page.getByTestId('session-row').count()).toBe(1);
    await first.page.getByText('This device').waitFor();
    await second.page.reload();
    await seeProfile(second.page, email);
  });

  it('a reload keeps the user logged in (one silent refresh)', async () => {
    const t = await newPage();
    const email = newEmail();
    await registerViaApi(email);
    await logIn(t.page, email);
    await seeProfile(t.page, email);
    const before = t.exchanges.length;
    await t.page.reload();
    await seeProfile(t.page, email);
    const after = t.exchanges.slice(before).filter((e) => e.path.startsWith('/auth/'));
    expect(after.map((e) => `${e.method} ${e.path} ${e.status}`)).toEqual([
      'POST /auth/refresh 200',
      'GET /auth/me 200',
    ]);
  });

  it('logout clears the cookie; a call afterwards shows the expired message with a working login link', async () => {
    const { page } = await newPage();
    const email = newEmail();
    await registerViaApi(email);
    await logIn(page, email);
    await seeProfile(page, email);
    expect(await refreshCookie(page.context())).toBeDefined();
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByText('You have been logged out.').waitFor();
    expect(await refreshCookie(page.context()), 'cookie gone after logout').toBeUndefined();
    await screenshot(page, 'logged-out');

    await page.goto(`${origin}/profile`);
    await page.getByText(EXPIRED, { exact: true }).waitFor();
    expect(await page.getByRole('alert').textContent()).toBe(EXPIRED);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('expired-title');
    await screenshot(page, 'session-expired');
    await page.getByRole('link', { name: 'Log in' }).last().click();
    expect(new URL(page.url()).pathname + new URL(page.url()).search).toBe('/login?next=%2Fprofile');
    await logIn(page, email);
    await seeProfile(page, email);
    expect(new URL(page.url()).pathname).toBe('/profile');
  });

  it('a session revoked from a second browser context ends the first on its next refresh', async () => {
    const a = await newPage();
    const email = newEmail();
    await registerViaApi(email);
    await logIn(a.page, email);
    await seeProfile(a.page, email);

    const b = await newPage(); // a separate browser context: another device
    await logIn(b.page, email);
    await seeProfile(b.page, email);
    await b.page.getByRole('link', { name: 'Sessions' }).click();
    await b.page.getByTestId('session-row').nth(1).waitFor();
    expect(await b.page.getByTestId('session-row').count()).toBe(2);
    const current = b.page.getByTestId('session-row').filter({ hasText: 'This device' });
    expect(await current.count()).toBe(1);
    await screenshot(b.page, 'sessions');
    await b.page.setViewportSize({ width: 390, height: 844 }); // a phone: rows become cards
    await screenshot(b.page, 'sessions-narrow');
    await b.page.setViewportSize({ width: 1024, height: 720 });
    const other = b.page.getByTestId('session-row').filter({ hasNotText: 'This device' });
    await other.getByRole('button', { name: /Revoke/ }).click();
    await b.page.getByRole('status').filter({ hasText: 'revoked' }).waitFor();
    await b.page.waitForFunction(() => document.querySelectorAll('[data-testid="session-row"]').length === 1);
    await screenshot(b.page, 'sessions-after-revoke');
    await b.page.emulateMedia({ colorScheme: 'dark' }); // the dark palette must pass axe too
    await screenshot(b.page, 'sessions-dark');
    await b.page.emulateMedia({ colorScheme: 'light' });

    await waitPastAccessTtl();
    const before = a.exchanges.length;
    await a.page.getByRole('button', { name: 'Reload profile' }).click();
    await a.page.getByText(EXPIRED, { exact: true }).waitFor();
    const after = a.exchanges.slice(before).map((e) => `${e.method} ${e.path} ${e.status}`);
    expect(after).toEqual(['GET /auth/me 401', 'POST /auth/refresh 401']);
    await a.page.getByRole('link', { name: 'Log in' }).last().waitFor();

    // and "log out everywhere" from b ends b too
    await b.page.getByRole('button', { name: 'Log out everywhere' }).click();
    await b.page.getByText('You have been logged out on every device.').waitFor();
    expect(await refreshCookie(b.page.context())).toBeUndefined();
  });

  it('/docs renders the API reference with the operations', async () => {
    const t = await newPage();
    const { page } = t;
    const res = await page.goto(`${origin}/docs`);
    expect(res?.status()).toBe(200);
    await page.getByText('/auth/login').first().waitFor({ timeout: 20_000 });
    await page.getByText('/auth/refresh').first().waitFor();
    await page.getByText('/auth/sessions').first().waitFor();
    await save(page, 'docs'); // the server's page: screenshot only, no app checks
    // The reference must work offline and leak nothing: no resource from another host (the
    // console errors of the page, checked after every test, would show such a failed load).
    const offsite = t.consoleErrors.filter((e) => /net::ERR_/.test(e) && !e.includes(`(${origin}`));
    expect(offsite, '/docs loads resources from another host').toEqual([]);
  });
});
