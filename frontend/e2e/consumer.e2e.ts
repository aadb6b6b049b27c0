// The consumer test: @baton/client as an app outside this repository gets it. `npm pack`, install
// the tarball into a scratch app in a temporary directory (offline, from the npm cache), type-check
// the app with strict tsc, bundle it with esbuild, then run it in Chromium and in Node against a
// live baton. The scratch app's sources are clients/typescript/consumer-test/.
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, launchChromium, registerViaApi, repo, startServer, track, type RunningServer, type Tracked } from './harness';

const run = promisify(execFile);

/** What clients/typescript/consumer-test/browser.ts puts on `window` (only its shape matters here). */
interface Consumer {
  restore(): Promise<boolean | string>;
  login(email: string, password: string): Promise<string>;
  me(): Promise<string>;
  sessions(): Promise<number | string>;
  logout(): Promise<void>;
  state(): string;
  events(): string[];
}
declare global {
  interface Window {
    consumer: Consumer;
  }
}
const clientDir = join(repo, 'clients/typescript');
const TTL_S = 2;

let scratch = '';
let tarball = '';
let server: RunningServer | undefined;
let browser: Browser | undefined;
const timings: string[] = [];

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const result = await fn();
  timings.push(`${what} ${Date.now() - started} ms`);
  return result;
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'baton-consumer-')); // outside the repository
  // --ignore-scripts: pack the dist/ that the app under test was built with (scripts/test-frontend
  // builds it just before), instead of building it a second time in the prepare script
  const packed = await timed('npm pack', () =>
    run('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', scratch], { cwd: clientDir }),
  );
  tarball = join(scratch, packed.stdout.trim().split('\n').at(-1) ?? '');
  for (const f of ['package.json', 'tsconfig.json', 'index.html', 'browser.ts', 'node.ts']) {
    await cp(join(clientDir, 'consumer-test', f), join(scratch, f));
  }
  await timed('npm install (offline)', async () => {
    const args = ['install', '--no-audit', '--no-fund', '--no-package-lock', tarball];
    try {
      await run('npm', [...args, '--offline'], { cwd: scratch });
    } catch {
      await run('npm', [...args, '--prefer-offline'], { cwd: scratch }); // a cold npm cache
    }
  });
  await timed('tsc (strict)', () => run(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', scratch]));
  await timed('esbuild', () =>
    build({
      entryPoints: [join(scratch, 'browser.ts')],
      absWorkingDir: scratch,
      bundle: true,
      minify: true,
      format: 'esm',
      target: 'es2022',
      outfile: join(scratch, 'dist/app.js'),
      logLevel: 'error',
    }),
  );
  await cp(join(scratch, 'index.html'), join(scratch, 'dist/index.html'));
  server = await startServer({ BATON_ACCESS_TTL: `${TTL_S}s`, BATON_JWT_LEEWAY: '0s', BATON_STATIC_DIR: join(scratch, 'dist') }, 'server-consumer');
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  console.log(`consumer test: ${timings.join('; ')}`);
  await browser?.close();
  await server?.stop();
  if (scratch !== '') await rm(scratch, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pastExpiry = () => sleep(TTL_S * 1000 + 1500);

describe('the packed package in an app outside the repository', () => {
  it('installs from the tarball with openapi-fetch as its only runtime dependency, passes strict tsc and bundles', async () => {
    expect(tarball).toMatch(/baton-client-\d+\.\d+\.\d+\.tgz$/);
    const installed = JSON.parse(await readFile(join(scratch, 'node_modules/@baton/client/package.json'), 'utf8')) as {
      version: string;
      dependencies: Record<string, string>;
    };
    const spec = JSON.parse(await readFile(join(repo, 'openapi/openapi.json'), 'utf8')) as { info: { version: string } };
    expect(installed.version).toBe(spec.info.version);
    expect(Object.keys(installed.dependencies)).toEqual(['openapi-fetch']);
    // what the tarball ships: the build, the example, the README; no sources, tests or fixtures
    const files = await readdir(join(scratch, 'node_modules/@baton/client'), { recursive: true });
    expect(files).toContain('README.md');
    expect(files).toContain(join('examples', 'node-login.mjs'));
    expect(files).toContain(join('dist', 'index.d.ts'));
    expect(files).toContain(join('dist', 'react.js'));
    expect(files.filter((f) => /\.test\.|^src|consumer-test/.test(f))).toEqual([]);
    expect((await stat(join(scratch, 'dist/app.js'))).size).toBeGreaterThan(0);
  });

  it('in Chromium: login, expiry, refresh and two tabs against a live baton', async () => {
    if (browser === undefined || server === undefined) throw new Error('not started');
    const origin = server.origin;
    const context = await browser.newContext();
    const open = async (): Promise<{ t: Tracked; call: <T>(fn: (c: Consumer) => Promise<T> | T) => Promise<T> }> => {
      const t = track(await context.newPage());
      await t.page.goto(`${origin}/`);
      await t.page.locator('body[data-ready="true"]').waitFor({ state: 'attached' });
      const page: Page = t.page;
      // the function is serialised and run in the page, with the page's window.consumer
      return { t, call: <T,>(fn: (c: Consumer) => Promise<T> | T) => page.evaluate<T>(`(${fn.toString()})(window.consumer)`) };
    };
    try {
      const email = `consumer-${Date.now()}@example.test`;
      await registerViaApi(origin, email);
      const a = await open();
      expect(await a.call((c) => c.restore())).toBe(false); // no cookie yet: quietly anonymous
      expect(await a.t.page.evaluate(([e, p]) => window.consumer.login(e, p), [email, PASSWORD] as const)).toBe('authenticated');
      expect(await a.call((c) => c.me())).toBe(email);
      expect(await a.call((c) => c.sessions())).toBe(1);

      await pastExpiry(); // the token it logged in with is refused by now
      expect(await a.call((c) => c.me())).toBe(email);
      expect(a.t.count('POST', '/auth/refresh', 200)).toBeGreaterThanOrEqual(1);
      expect(await a.call((c) => c.events())).toContain('refreshed:this-tab');

      const b = await open(); // a second tab: restores from the cookie, hands its token to the first
      expect(await b.call((c) => c.restore())).toBe(true);
      expect(await b.call((c) => c.me())).toBe(email);
      await expect.poll(() => a.call((c) => c.events())).toContain('refreshed:other-tab');

      await b.call((c) => c.logout());
      await expect.poll(() => a.call((c) => c.state())).toBe('anonymous');
      expect([...a.t.consoleErrors, ...b.t.consoleErrors]).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('in Node 20: body delivery against a live baton, with the packaged example', async () => {
    if (server === undefined) throw new Error('not started');
    const email = `consumer-node-${Date.now()}@example.test`;
    await registerViaApi(server.origin, email);
    const tokenFile = join(scratch, 'refresh-token');
    const example = join(scratch, 'node_modules/@baton/client/examples/node-login.mjs');
    const env = { ...process.env, BATON_URL: server.origin, BATON_EMAIL: email, BATON_PASSWORD: PASSWORD, BATON_TOKEN_FILE: tokenFile };
    const node = (args: string[] = []) => run(process.execPath, [example, ...args], { cwd: scratch, env, timeout: 30_000 });

    const first = await timed('node example: login', () => node());
    expect(first.stdout).toContain('logged in');
    expect(first.stdout).toContain(`me: ${email}`);
    const saved = await readFile(tokenFile, 'utf8');
    expect(saved.length).toBeGreaterThan(40);
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);

    await pastExpiry();
    const second = await timed('node example: resume', () => node());
    expect(second.stdout).toContain('resumed the saved session');
    expect(second.stdout).toContain(`me: ${email}`);
    expect(await readFile(tokenFile, 'utf8')).not.toBe(saved); // rotated

    const third = await timed('node example: logout', () => node(['--logout']));
    expect(third.stdout).toContain('logged out');
    await expect(stat(tokenFile)).rejects.toThrow();
    // the session is over on the server too: the last token no longer refreshes
    const res = await fetch(`${server.origin}/auth/refresh`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: saved }),
    });
    expect(res.status).toBe(401);
  });
});
