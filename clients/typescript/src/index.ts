// Public surface of the Baton client (`@baton/client`). The React binding is `@baton/client/react`,
// the in-memory fake server for tests `@baton/client/testing`.
export { createBatonClient, memoryTokenStore, TOKEN_ENDPOINTS } from './client.js';
export type {
  AuthEvent,
  AuthEventOf,
  AuthEventType,
  AuthState,
  BatonClient,
  BatonClientOptions,
  ChannelLike,
  LockManagerLike,
  ProactiveRefreshOptions,
  RefreshOutcome,
  RefreshTokenStore,
  VisibilityLike,
} from './client.js';
export { ApiError, RefreshUnavailableError, retryAfterSeconds } from './errors.js';
export type { ApiErrorKind } from './errors.js';
export type {
  LoginRequest,
  Problem,
  ProblemCode,
  RegisterRequest,
  Session,
  TokenPair,
  User,
  paths,
} from './types.js';
