// @baton/client in Node 20 (scripts, server-side jobs, tests): body delivery, with the refresh
// token kept in a file only this user can read.
//
//   BATON_URL=http://127.0.0.1:8080 BATON_EMAIL=ada@example.test BATON_PASSWORD='...' \
//     node node_modules/@baton/client/examples/node-login.mjs [--logout]
//
// The first run logs in and saves the refresh token; later runs resume the session from the file
// (one refresh, which rotates the token in the file). --logout ends the session and removes it.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { ApiError, createBatonClient } from '@baton/client';

const baseUrl = process.env.BATON_URL ?? 'http://127.0.0.1:8080';
const tokenFile = process.env.BATON_TOKEN_FILE ?? '.baton-refresh-token';

/** A RefreshTokenStore: anything with get() and set(); here a file with mode 0600. */
const fileStore = {
  async get() {
    try {
      return (await readFile(tokenFile, 'utf8')).trim() || null;
    } catch {
      return null;
    }
  },
  async set(token) {
    if (token === null) await rm(tokenFile, { force: true });
    else await writeFile(tokenFile, token, { mode: 0o600 });
  },
};

const baton = createBatonClient({ baseUrl, refreshTokenStore: fileStore });
baton.on('session-expired', () => console.log('the saved session has ended; log in again'));

try {
  if (await baton.restore()) {
    console.log('resumed the saved session');
  } else {
    const email = process.env.BATON_EMAIL;
    const password = process.env.BATON_PASSWORD;
    if (!email || !password) throw new Error('no saved session: set BATON_EMAIL and BATON_PASSWORD to log in');
    await baton.login({ email, password });
    console.log(`logged in; refresh token saved to ${tokenFile}`);
  }
  const me = await baton.me(); // refreshed and retried once by itself if the access token expired
  console.log(`me: ${me.email} (${me.id})`);
  const sessions = await baton.listSessions();
  console.log(`sessions: ${sessions.length} live, this one ${sessions.find((s) => s.current)?.id ?? '?'}`);
  if (process.argv.includes('--logout')) {
    await baton.logout();
    console.log('logged out; token file removed');
  }
} catch (error) {
  if (error instanceof ApiError) {
    console.error(`baton: ${error.status} ${error.code ?? error.kind}: ${error.message}${error.retryable ? ' (retryable)' : ''}`);
  } else {
    console.error(error instanceof Error ? error.message : error);
  }
  process.exitCode = 1;
} finally {
  baton.dispose();
}
