// Public surface of the Baton client, for this app and any other frontend of the API.
export { createBatonClient, TOKEN_ENDPOINTS } from './client';
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
} from './client';
export { ApiError, RefreshUnavailableError, retryAfterSeconds } from './errors';
export type { ApiErrorKind } from './errors';
export type {
  LoginRequest,
  Problem,
  ProblemCode,
  RegisterRequest,
  Session,
  TokenPair,
  User,
  paths,
} from './types';
