// @vitest-environment jsdom
import { act, createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { afterEach, expect, it } from 'vitest';
import { createBatonClient, type BatonClient } from './client.js';
import { BatonProvider, useBaton, useSession } from './react.js';
import { FakeServer } from './testing/fake-server.js';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const clients: BatonClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.dispose();
  document.body.innerHTML = '';
});

function Status() {
  return createElement('output', null, useSession());
}

it('useSession() re-renders with the client state through restore, login and logout', async () => {
  const server = new FakeServer();
  server.refreshMode = 401; // no cookie yet
  const client = createBatonClient({ baseUrl: 'http://baton.test', fetch: server.fetch, locks: null, channel: null, proactiveRefresh: false });
  clients.push(client);
  const host = document.createElement('div');
  document.body.append(host);
  const root = createRoot(host);
  await act(async () => {
    root.render(createElement(BatonProvider, { client }, createElement(Status)));
  });
  expect(host.textContent).toBe('unknown');
  await act(async () => {
    await client.restore();
  });
  expect(host.textContent).toBe('anonymous');
  await act(async () => {
    await client.login({ email: server.user.email, password: 'correct horse' });
  });
  expect(host.textContent).toBe('authenticated');
  await act(async () => {
    await client.logout();
  });
  expect(host.textContent).toBe('anonymous');
  await act(async () => {
    root.unmount();
  });
});

it('useBaton() outside a provider throws an error that names the provider', () => {
  function Orphan() {
    useBaton();
    return null;
  }
  const root = createRoot(document.createElement('div'));
  const errors: unknown[] = [];
  const onError = (e: ErrorEvent) => {
    errors.push(e.error);
    e.preventDefault();
  };
  window.addEventListener('error', onError);
  expect(() => {
    act(() => {
      root.render(createElement(Orphan));
    });
  }).toThrow(/<BatonProvider/);
  window.removeEventListener('error', onError);
});
