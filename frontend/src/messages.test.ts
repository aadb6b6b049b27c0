import { describe, expect, it } from 'vitest';
import { ApiError } from '@baton/client';
import { SESSION_EXPIRED_MESSAGE, describeError, deviceName } from './messages';
import { safeNext } from './router-utils';

function problemResponse(status: number, code: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify({ type: 'about:blank', title: code, status, detail: `detail of ${code}`, code, ...extra }), {
    status,
    headers: { 'Content-Type': 'application/problem+json', ...headers },
  });
}

describe('describeError', () => {
  it('words the problem codes the pages show', async () => {
    expect(describeError(await ApiError.fromResponse(problemResponse(401, 'invalid_credentials')))).toBe('Wrong email or password.');
    expect(describeError(await ApiError.fromResponse(problemResponse(409, 'email_taken')))).toMatch(/already exists/);
    expect(describeError(await ApiError.fromResponse(problemResponse(422, 'validation_failed')))).toBe('detail of validation_failed');
    expect(describeError(await ApiError.fromResponse(problemResponse(401, 'token_expired')))).toBe(SESSION_EXPIRED_MESSAGE);
    expect(describeError(ApiError.network(new TypeError('fetch failed')))).toMatch(/Could not reach the server/);
    expect(describeError(ApiError.timeout(new DOMException('late', 'TimeoutError')))).toBe('The server did not answer in time. Please try again.');
    expect(describeError(new Error('x'))).toMatch(/Something went wrong/);
    expect(describeError(await ApiError.fromResponse(problemResponse(403, 'origin_not_allowed')))).toMatch(/not allowed to use your session/);
  });

  it('gives the wait of a 429 from retry_after, else from Retry-After', async () => {
    const body = await ApiError.fromResponse(problemResponse(429, 'rate_limited', { retry_after: 12 }, { 'Retry-After': '99' }));
    expect(describeError(body)).toBe('Too many attempts. Please wait 12 seconds and try again.');
    const header = await ApiError.fromResponse(problemResponse(429, 'rate_limited', {}, { 'Retry-After': '1' }));
    expect(describeError(header)).toBe('Too many attempts. Please wait 1 second and try again.');
    const none = await ApiError.fromResponse(problemResponse(429, 'rate_limited'));
    expect(describeError(none)).toBe('Too many attempts. Please wait a moment and try again.');
    expect(none.retryable).toBe(true);
  });
});

describe('deviceName', () => {
  it('names common browsers', () => {
    expect(deviceName('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36')).toBe('Chrome on Linux');
    expect(deviceName('Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15')).toBe('Safari on macOS');
    expect(deviceName('Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:130.0) Gecko/20100101 Firefox/130.0')).toBe('Firefox on Windows');
    expect(deviceName('curl/8.5.0')).toBe('curl/8.5.0');
    expect(deviceName(null)).toBe('Unknown device');
  });
});

describe('safeNext', () => {
  it('only accepts same-origin paths after login', () => {
    expect(safeNext('/sessions?x=1')).toBe('/sessions?x=1');
    expect(safeNext('//evil.test/')).toBeNull();
    expect(safeNext('/\\evil.test')).toBeNull();
    expect(safeNext('https://evil.test/')).toBeNull();
    expect(safeNext(null)).toBeNull();
  });
});
