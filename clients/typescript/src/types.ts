// Every wire type the client uses is derived from the generated `schema.d.ts` (run
// `scripts/gen-client`), addressed by operation path, so a change in the OpenAPI document shows up
// here as a type error instead of a silent mismatch. Nothing in this file is a hand-written copy.
import type { paths } from './schema.js';

// Media-type keys may carry parameters (`application/json; charset=utf-8`), so match by prefix.
type JsonKey<C> = Extract<keyof C, `application/json${string}`>;
type ProblemKey<C> = Extract<keyof C, `application/problem+json${string}`>;
type JsonOf<R> = R extends { content: infer C } ? C[JsonKey<C>] : never;
type ProblemOf<R> = R extends { content: infer C } ? C[ProblemKey<C>] : never;
type RequestJsonOf<Op> = Op extends { requestBody?: infer RB }
  ? NonNullable<RB> extends { content: infer C }
    ? C[JsonKey<C>]
    : never
  : never;

export type { paths };

/** `POST /auth/login` and `POST /auth/refresh` 200 body. */
export type TokenPair = JsonOf<paths['/auth/login']['post']['responses'][200]>;
/** `GET /auth/me` 200 body, also `POST /auth/register` 201. */
export type User = JsonOf<paths['/auth/me']['get']['responses'][200]>;
/** One entry of `GET /auth/sessions`. */
export type Session = JsonOf<paths['/auth/sessions']['get']['responses'][200]>[number];
export type LoginRequest = RequestJsonOf<paths['/auth/login']['post']>;
export type RegisterRequest = RequestJsonOf<paths['/auth/register']['post']>;
/** The RFC 9457 problem body every error carries. */
export type Problem = ProblemOf<paths['/auth/login']['post']['responses'][401]>;
/** The stable machine-readable error code (`invalid_credentials`, `rate_limited`, ...). */
export type ProblemCode = Problem['code'];
