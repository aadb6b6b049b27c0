// The documented development set-up: the Vite dev server proxying /auth to the real server, whose
// allowed origins are only its own. The proxy must rewrite the dev server's Origin (or refresh
// and logout would get 403 origin_not_allowed) and must not rewrite anyone else's.
import { createServer as createNetServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchChromium, screenshot, startServer, track, type RunningServer } from './harness';

const frontend = resolve(dirname(fileURLToPath(import.meta.url)), '..');
let api: RunningServer | undefined;
let vite: ViteDevServer | undefined;
let browser: Browser | undefined;
let devOrigin = '';

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createNetServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      s.close(() => {
        res(port);
      });
    });
  });
}

beforeAll(async () => {
  // allowed origins: the server's own only (the default), as with `scripts/run`
  api = await startServer({}, 'server-dev-proxy');
  const port = await freePort();
  process.env['BATON_API'] = api.origin;
  process.env['BATON_DEV_PORT'] = String(port);
  vite = await createServer({ root: frontend, configFile: resolve(frontend, 'vite.config.ts'), logLevel: 'warn' });
  await vite.listen();
  devOrigin = `http://127.0.0.1:${port}`;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await vite?.close();
  await api?.stop();
});

it('through the dev proxy: login, a reload (cookie refresh) and logout work; a foreign Origin is still refused', async () => {
  if (browser === undefined || api === undefined) throw new Error('not started');
  const email = `dev-${Date.now()}@example.test`;
  const reg = await fetch(`${devOrigin}/auth/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password: 'correct horse battery' }),
  });
  expect(reg.status).toBe(201);

  const context = await browser.newContext();
  const t = track(await context.newPage());
  const { page } = t;
  await page.goto(`${devOrigin}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByTestId('profile-email').filter({ hasText: email }).waitFor();
  await page.reload();
  await page.getByTestId('profile-email').filter({ hasText: email }).waitFor();
  expect(t.count('POST', '/auth/refresh', 200)).toBeGreaterThanOrEqual(1);
  expect(t.count('POST', '/auth/refresh', 403)).toBe(0);
  await screenshot(page, 'dev-server-profile');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByText('You have been logged out.').waitFor();
  expect(t.count('POST', '/auth/logout', 204)).toBe(1);
  expect((await context.cookies()).find((c) => c.name === '__Secure-baton_refresh')).toBeUndefined();
  expect(t.consoleErrors).toEqual([]);
  await context.close();

  const foreign = await fetch(`${devOrigin}/auth/refresh`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: 'http://evil.test', Cookie: '__Secure-baton_refresh=x' },
    body: '{}',
  });
  expect(foreign.status).toBe(403);
  expect(((await foreign.json()) as { code: string }).code).toBe('origin_not_allowed');
});
