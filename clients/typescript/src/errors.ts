import type { Problem, ProblemCode } from './types.js';

/** What went wrong, in the terms a UI branches on. */
export type ApiErrorKind =
  /** The server answered with a problem body (or at least a 4xx/5xx status). */
  | 'http'
  /** No answer: network down, DNS, CORS, aborted. Retryable; the session is kept. */
  | 'network'
  /** No answer in time (the refresh request's deadline). Retryable; the session is kept. */
  | 'timeout';

/**
 * An error from the Baton API. `code` is the problem body's stable code when there is one.
 * `retryable` is true for the answers after which the session is kept (network, timeout, 5xx,
 * 429, 409)
 * per the contract's section 6.
 */
export class ApiError extends Error {
  override readonly name: string = 'ApiError';
  readonly kind: ApiErrorKind;
  readonly status: number;
  readonly code: ProblemCode | undefined;
  readonly problem: Problem | undefined;
  /** Seconds to wait before trying again (`retry_after` or the `Retry-After` header), if given. */
  readonly retryAfter: number | undefined;

  constructor(
    message: string,
    init: {
      kind: ApiErrorKind;
      status: number;
      problem?: Problem | undefined;
      retryAfter?: number | undefined;
      cause?: unknown;
    },
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.kind = init.kind;
    this.status = init.status;
    this.problem = init.problem;
    this.code = init.problem?.code;
    this.retryAfter = init.retryAfter;
  }

  get retryable(): boolean {
    return this.kind !== 'http' || this.status >= 500 || this.status === 429 || this.status === 409;
  }

  /** A 401 that survived the refresh-and-retry: the session is over. */
  get sessionExpired(): boolean {
    return this.kind === 'http' && this.status === 401;
  }

  static network(cause: unknown): ApiError {
    return new ApiError('The server could not be reached.', { kind: 'network', status: 0, cause });
  }

  static timeout(cause: unknown): ApiError {
    return new ApiError('The server did not answer in time.', { kind: 'timeout', status: 0, cause });
  }

  /** Builds the error from a non-2xx response; reads its body. */
  static async fromResponse(response: Response, body?: unknown): Promise<ApiError> {
    const problem = body === undefined ? await readProblem(response) : asProblem(body);
    return new ApiError(problem?.detail ?? problem?.title ?? `HTTP ${response.status}`, {
      kind: 'http',
      status: response.status,
      problem,
      retryAfter: retryAfterSeconds(problem, response),
    });
  }
}

/** The refresh could not be done right now (network, 5xx, 429, ...); the session is kept. */
export class RefreshUnavailableError extends ApiError {
  override readonly name: string = 'RefreshUnavailableError';
}

export async function readProblem(response: Response): Promise<Problem | undefined> {
  try {
    return asProblem(JSON.parse(await response.text()));
  } catch {
    return undefined;
  }
}

export function asProblem(body: unknown): Problem | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as Record<string, unknown>;
  return typeof b['code'] === 'string' && typeof b['status'] === 'number' ? (body as Problem) : undefined;
}

/** `retry_after` from the problem body, else the `Retry-After` header (seconds or HTTP date). */
export function retryAfterSeconds(problem: Problem | undefined, response: Response): number | undefined {
  const fromBody = (problem as { retry_after?: unknown } | undefined)?.retry_after;
  if (typeof fromBody === 'number' && Number.isFinite(fromBody)) return Math.max(0, Math.ceil(fromBody));
  const header = response.headers.get('Retry-After');
  if (header === null || header.trim() === '') return undefined;
  const secs = Number(header);
  if (Number.isFinite(secs)) return Math.max(0, Math.ceil(secs));
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}
