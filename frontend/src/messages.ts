import { ApiError } from '@baton/client';

export const SESSION_EXPIRED_MESSAGE = 'Your session has expired. Please log in again.';

function seconds(n: number): string {
  return n === 1 ? '1 second' : `${n} seconds`;
}

/** A sentence for the user from any error the client can throw, using the problem body's code. */
export function describeError(error: unknown): string {
  if (!(error instanceof ApiError)) return 'Something went wrong. Please try again.';
  if (error.kind === 'network') return 'Could not reach the server. Check your connection and try again.';
  if (error.kind === 'timeout') return 'The server did not answer in time. Please try again.';
  switch (error.code) {
    case 'invalid_credentials':
      return 'Wrong email or password.';
    case 'email_taken':
      return 'An account with this email already exists. Log in instead.';
    case 'registration_closed':
      return 'Registration is closed on this server.';
    case 'rate_limited':
      return error.retryAfter === undefined
        ? 'Too many attempts. Please wait a moment and try again.'
        : `Too many attempts. Please wait ${seconds(error.retryAfter)} and try again.`;
    case 'session_not_found':
      return 'That session no longer exists. The list has been updated.';
    case 'payload_too_large':
      return 'That input is too large.';
    case 'validation_failed':
      return error.problem?.detail ?? 'Please check the form and try again.';
    case 'origin_not_allowed':
      return 'This address is not allowed to use your session. Open the app at the address the server is configured for.';
    case 'service_unavailable':
      return 'The service is temporarily unavailable. Please try again in a moment.';
    default:
      if (error.status === 401) return SESSION_EXPIRED_MESSAGE;
      if (error.status >= 500) return 'The service is temporarily unavailable. Please try again in a moment.';
      return error.problem?.detail ?? error.message;
  }
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function formatDate(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateFormat.format(d);
}

/** "Chrome on Linux" from a User-Agent string; the raw string when nothing is recognised. */
export function deviceName(userAgent: string | null | undefined): string {
  if (!userAgent) return 'Unknown device';
  const browser =
    /Edg\//.test(userAgent) ? 'Edge'
    : /Firefox\//.test(userAgent) ? 'Firefox'
    : /HeadlessChrome\//.test(userAgent) ? 'Headless Chrome'
    : /(Chrome|Chromium|CriOS)\//.test(userAgent) ? 'Chrome'
    : /Safari\//.test(userAgent) && /Version\//.test(userAgent) ? 'Safari'
    : null;
  const os =
    /Android/.test(userAgent) ? 'Android'
    : /iPhone|iPad|iPod/.test(userAgent) ? 'iOS'
    : /Windows/.test(userAgent) ? 'Windows'
    : /Mac OS X|Macintosh/.test(userAgent) ? 'macOS'
    : /CrOS/.test(userAgent) ? 'ChromeOS'
    : /Linux/.test(userAgent) ? 'Linux'
    : null;
  if (browser && os) return `${browser} on ${os}`;
  return browser ?? os ?? userAgent;
}
