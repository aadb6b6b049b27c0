// Starts the real Baton server (fresh SQLite directory, free port, short access TTL, serving
// frontend/dist) and a headless system Chromium; records console errors, network and screenshots.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const frontend = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const repo = resolve(frontend, '..');
export const artifacts = join(frontend, 'e2e-artifacts');

export function serverBinary(): string {
  const candidates = [
    process.env['BATON_BIN'],
    process.env['CARGO_TARGET_DIR'] && join(resolve(repo, process.env['CARGO_TARGET_DIR']), 'debug/baton'),
    join(repo, 'target/debug/baton'),
    join(homedir(), '.cache/baton-target/debug/baton'),
  ].filter((c): c is string => typeof c === 'string' && c !== '');
  const found = candidates.find((c) => existsSync(c));
  if (found === undefined) throw new Error(`no baton binary; tried ${candidates.join(', ')} (set BATON_BIN)`);
  return found;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface RunningServer {
  origin: string;
  log: string;
  stop(): Promise<void>;
}

/** `settings` override the test defaults (e.g. turn throttling on); `name` names the log file. */
export async function startServer(settings: Record<string, string> = {}, name = 'server'): Promise<RunningServer> {
  const bin = serverBinary();
  const staticDir = settings['BATON_STATIC_DIR'] ?? join(frontend, 'dist');
  if (!existsSync(join(staticDir, 'index.html'))) throw new Error(`${staticDir}/index.html is missing: run \`npm run build\` first`);
  const dir = await mkdtemp(join(tmpdir(), 'baton-e2e-'));
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  await mkdir(artifacts, { recursive: true });
  const log = join(artifacts, `${name}.log`);
  const out = createWriteStream(log);
  const child: ChildProcess = spawn(bin, ['serve'], {
    env: {
      ...process.env,
      DATABASE_URL: `sqlite://${dir}/baton.db?mode=rwc`,
      BATON_BIND: `127.0.0.1:${port}`,
      BATON_ACCESS_TTL: '2s',
      BATON_JWT_LEEWAY: '0s', // every wait for an expiry is TTL + leeway: keep it short
      BATON_RATE_LIMITS: 'off',
      BATON_ALLOWED_ORIGINS: origin,
      BATON_MASTER_KEY: randomBytes(32).toString('hex'),
      ...settings,
      BATON_STATIC_DIR: staticDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const status: { exited: number | null } = { exited: null };
  child.once('exit', (code) => {
    status.exited = code ?? -1;
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (status.exited !== null) throw new Error(`baton exited with ${status.exited} before it was ready; see ${log}`);
    try {
      if ((await fetch(`${origin}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`baton not ready after 60 s; see ${log}`);
    await sleep(100);
  }
  return {
    origin,
    log,
    async stop() {
      const running = () => child.exitCode === null && child.signalCode === null;
      if (running()) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([gone, sleep(5000)]);
        if (running()) child.kill('SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** A Chromium whose pages can really be frozen with CDP `Page.setWebLifecycleState`. Playwright
 *  turns on focus emulation in the pages it sets up, which keeps them visible and makes the
 *  freeze a silent no-op; pages of the default context of a browser it merely connects to
 *  (`noDefaults`) are left alone. One temporary profile; `close()` removes it. */
export async function launchFreezableChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = await mkdtemp(join(tmpdir(), 'baton-e2e-chromium-'));
  const child = spawn(CHROMIUM, [...CHROMIUM_ARGS, '--remote-debugging-port=0', `--user-data-dir=${profile}`, 'about:blank'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const endpoint = await new Promise<string>((res, rej) => {
    let text = '';
    const timer = setTimeout(() => {
      rej(new Error(`chromium printed no DevTools endpoint in 30 s: ${text}`));
    }, 30_000);
    child.stderr.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const m = /DevTools listening on (ws:\S+)/.exec(text);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`chromium exited with ${code}: ${text}`));
    });
  });
  // `noDefaults` is accepted by connectOverCDP but not in its public type
  const browser = await chromium.connectOverCDP({ endpointURL: endpoint, noDefaults: true } as { endpointURL: string });
  const context = browser.contexts()[0];
  if (context === undefined) throw new Error('no default browser context');
  return {
    context,
    async close() {
      await browser.close(); // only disconnects: the browser is ours to stop
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([gone, sleep(5000)]);
        child.kill('SIGKILL');
      }
      await rm(profile, { recursive: true, force: true, maxRetries: 5 });
    },
  };
}

export const PASSWORD = 'correct horse battery';

export async function registerViaApi(origin: string, email: string): Promise<void> {
  const res = await fetch(`${origin}/auth/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  if (res.status !== 201) throw new Error(`register ${email}: ${res.status} ${await res.text()}`);
}

export async function logIn(page: Page, origin: string, email: string, path = '/login'): Promise<void> {
  if (!page.url().includes('/login')) await page.goto(`${origin}${path}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
}

export async function seeProfile(page: Page, email: string, timeout = 10_000): Promise<void> {
  await page.getByTestId('profile-email').filter({ hasText: email }).waitFor({ timeout });
}

/** Makes every page of `context` report `document.visibilityState === 'hidden'`: the client
 *  refreshes proactively only in visible tabs, so in these pages the first call after expiry
 *  takes the reactive path (401, refresh, retry). */
export async function hideTabs(context: BrowserContext): Promise<void> {
  await context.addInitScript(() => {
    Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => 'hidden' });
    Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => true });
  });
}

export interface Exchange {
  method: string;
  path: string;
  status: number;
}

/** What a page did: its API exchanges and its console errors. */
export interface Tracked {
  page: Page;
  exchanges: Exchange[];
  consoleErrors: string[];
  count(method: string, path: string, status?: number): number;
}

// The protocol itself makes 401s (an expired access token, a refused refresh); Chromium logs
// every non-2xx fetch as "Failed to load resource". Those are expected: 401 always, other statuses
// only where a scenario provokes them on purpose (`allow`).
const FAILED_LOAD = /^Failed to load resource: the server responded with a status of (\d{3}) /;

export function track(page: Page, allow: readonly number[] = []): Tracked {
  const exchanges: Exchange[] = [];
  const consoleErrors: string[] = [];
  const expected = new Set([401, ...allow]);
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const status = FAILED_LOAD.exec(msg.text())?.[1];
    if (status !== undefined && expected.has(Number(status))) return;
    consoleErrors.push(`${msg.text()} (${msg.location().url})`);
  });
  page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
  page.on('response', (response) => {
    exchanges.push({
      method: response.request().method(),
      path: new URL(response.url()).pathname,
      status: response.status(),
    });
  });
  return {
    page,
    exchanges,
    consoleErrors,
    count(method, path, status) {
      return exchanges.filter((e) => e.method === method && e.path === path && (status === undefined || e.status === status)).length;
    },
  };
}

/** Removes the screenshots of an earlier run, so the folder shows this run only. */
export async function resetScreenshots(): Promise<void> {
  await mkdir(artifacts, { recursive: true });
  for (const f of await readdir(artifacts)) if (f.endsWith('.png')) await rm(join(artifacts, f));
}

/** Saves a full-page screenshot under e2e-artifacts/ (numbered in the order taken across the
 *  run's files) and prints its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(artifacts, { recursive: true });
  const taken = (await readdir(artifacts)).filter((f) => f.endsWith('.png')).length;
  const path = join(artifacts, `${String(taken + 1).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
  return path;
}

const axeSource = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const axeCode = readFileSync(axeSource, 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[] }[];
}

/** Runs axe-core (WCAG 2.1 A and AA rules) on the page; returns the violations, described. */
export async function accessibilityViolations(page: Page): Promise<string[]> {
  // Evaluated over the DevTools protocol, not as a <script> tag: the app's
  // Content-Security-Policy (script-src 'self') rightly refuses inline scripts.
  await page.evaluate(axeCode);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: Document, opts: unknown): Promise<{ violations: AxeViolation[]; passes: unknown[] }> } }).axe;
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    if (result.passes.length === 0) throw new Error('axe-core checked nothing');
    return result.violations;
  });
  return violations.map((v) => `${v.impact ?? '?'} ${v.id}: ${v.help} at ${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')}`);
}
