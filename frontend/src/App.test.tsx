// @vitest-environment jsdom
// The app shell against the fake server: the expired-session message and its login link that
// returns the user to the page they were on. (The same flow runs against the real server in
// Chromium in e2e/app.e2e.ts.)
import { act } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { App } from './App';
import { createBatonClient, type BatonClient } from '@baton/client';
import { BatonProvider } from '@baton/client/react';
import { FakeServer } from '@baton/client/testing';
import { SESSION_EXPIRED_MESSAGE } from './messages';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let server: FakeServer;
let client: BatonClient;
let container: HTMLDivElement;
let root: Root;

async function until<T>(probe: () => T | null | undefined, what: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const found = probe();
    if (found !== null && found !== undefined) return found;
    await act(() => new Promise((r) => setTimeout(r, 5)));
  }
  throw new Error(`timed out waiting for ${what}; page: ${container.textContent}`);
}

function byText(selector: string, text: string): HTMLElement | undefined {
  return [...container.querySelectorAll<HTMLElement>(selector)].find((el) => el.textContent.trim() === text);
}

function fill(label: string, value: string): void {
  const input = [...container.querySelectorAll('label')].find((l) => l.textContent === label)?.control as HTMLInputElement;
  act(() => {
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')?.set?.call(input, value);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

beforeEach(async () => {
  server = new FakeServer();
  client = createBatonClient({ baseUrl: 'http://baton.test', fetch: server.fetch, locks: null, channel: null, proactiveRefresh: false });
  await client.login({ email: server.user.email, password: 'correct horse' });
  window.history.replaceState(null, '', '/profile');
  window.dispatchEvent(new PopStateEvent('popstate'));
  container = document.createElement('div');
  document.body.append(container);
  root = createRoot(container);
  await act(async () => {
    root.render(
      <BatonProvider client={client}>
        <App />
      </BatonProvider>,
    );
  });
});

afterEach(() => {
  act(() => root.unmount());
  client.dispose();
  container.remove();
});

it('shows the profile, then the exact expired message with a login link back to the page', async () => {
  await until(() => byText('dd', server.user.email), 'the profile');
  expect(document.activeElement?.textContent).toBe('Your profile'); // the heading has the focus

  server.expireAccessTokens();
  server.refreshMode = 401;
  await act(async () => byText('button', 'Reload profile')?.click());
  const alert = await until(() => container.querySelector('[role="alert"]'), 'the expired message');
  expect(alert.textContent).toBe(SESSION_EXPIRED_MESSAGE);
  const link = byText('main a', 'Log in') as HTMLAnchorElement;
  expect(link.getAttribute('href')).toBe('/login?next=%2Fprofile');
  expect(server.count('POST', '/auth/refresh')).toBe(2); // restore on load + the one after the 401

  await act(async () => link.click());
  expect(window.location.pathname).toBe('/login');
  await until(() => byText('h1', 'Log in'), 'the login page');
  fill('Email', server.user.email);
  fill('Password', 'correct horse');
  await act(async () => (container.querySelector('form button[type="submit"]') as HTMLButtonElement).click());
  await until(() => byText('dd', server.user.email), 'the profile again');
  expect(window.location.pathname).toBe('/profile');
});

it('shows the wrong-password problem as a focused alert', async () => {
  await act(async () => {
    window.history.pushState(null, '', '/login');
    window.dispatchEvent(new PopStateEvent('popstate'));
  });
  await until(() => byText('h1', 'Log in'), 'the login page');
  fill('Email', server.user.email);
  fill('Password', 'nope');
  await act(async () => (container.querySelector('form button[type="submit"]') as HTMLButtonElement).click());
  const alert = await until(() => container.querySelector('[role="alert"]'), 'the error');
  expect(alert.textContent).toBe('Wrong email or password.');
  expect(document.activeElement).toBe(alert);
});
