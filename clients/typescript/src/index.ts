// Public surface of the Baton client, for this app and any other frontend of the API.
export { createBatonClient, TOKEN_ENDPOINTS } from './client.js';
export type {
  AuthEvent,
  AuthEventOf,
  AuthEventType,
  AuthState,
  BatonClient,
  BatonClientOptions,
  ChannelLike,
  LockManagerLike,
  RefreshOutcome,
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
