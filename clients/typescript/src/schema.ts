// Generated from openapi/openapi.json by scripts/gen-types.mjs (openapi-typescript). Do not edit:
// run `npm run gen -w @baton/client` (or scripts/gen-client) after the document changes.
export interface paths {
    "/.well-known/auth-configuration": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The auth configuration
         * @description Issuer, audience, JWKS location, token lifetimes (whole seconds), the
         *     reuse grace and the refresh cookie's name and path, so clients and
         *     test suites can adapt to this instance.
         */
        get: operations["getAuthConfiguration"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/.well-known/jwks.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The signing keys (JWKS)
         * @description Every Ed25519 public key that may have signed a still-valid access
         *     token: the current one, and retired ones until their last token has
         *     expired. Resource servers verify access tokens with these: cache the
         *     set for `max-age` (revalidate with `If-None-Match`), and refetch at
         *     once, at most every few seconds, when a token names an unknown `kid`.
         *     The rules: docs/RESOURCE_SERVERS.md.
         */
        get: operations["getJwks"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/login": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Log in
         * @description Checks the credentials and starts a session: a new refresh-token
         *     family. Returns an access token, and the refresh token in an
         *     `HttpOnly; Secure; SameSite=Strict` cookie scoped to `/auth` — or in
         *     the body when `refresh_token_in_body` is true (non-browser clients).
         *     A wrong password and an unknown email get the same 401
         *     `invalid_credentials` in comparable time. Throttled per client address,
         *     and per account and address on wrong passwords (429 with `Retry-After`):
         *     guesses from elsewhere never refuse an address that has not failed.
         */
        post: operations["login"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/logout": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Log out
         * @description Revokes the whole session of the presented refresh token (body or
         *     cookie), also when that token was already rotated, and always clears
         *     the cookie. Idempotent: a missing, unknown or revoked token is also a
         *     204. A cookie logout from a foreign `Origin` gets 403 and changes
         *     nothing. Access tokens already issued stay valid until they expire.
         */
        post: operations["logout"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/me": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The current user
         * @description Returns the account of the access token. Access tokens are stateless:
         *     one issued before a logout keeps working here until it expires.
         */
        get: operations["getMe"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/refresh": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Refresh the token pair
         * @description Rotates the refresh token: the presented one is spent, a new pair is
         *     returned on the channel the token came in on (body in, body out;
         *     cookie in, cookie out). Presenting an already rotated token again —
         *     after the reuse grace, or once its successor was used — revokes the
         *     whole session (401 `refresh_token_reused`). Within the grace, while the
         *     successor is unused, the same successor is returned again, so
         *     concurrent refreshes converge. Every 401 that came through the cookie
         *     also clears the cookie. A cookie refresh from a foreign `Origin` gets
         *     403 `origin_not_allowed` and changes nothing.
         */
        post: operations["refresh"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/register": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Create an account
         * @description Creates an account with a unique email (compared without regard to
         *     case) and a password of 8 to 128 characters. Issues no tokens and sets
         *     no cookie: log in next. Answers 403 `registration_closed` when the
         *     instance has registration turned off.
         */
        post: operations["register"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/sessions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List my sessions
         * @description The live sessions (one per login, on whatever device) of the access
         *     token's user, newest login first, with `current: true` on the one
         *     making the call. Paged: at most `limit` sessions (default 50, at most
         *     100) per reply; when more follow, the `Link` header (`rel="next"`)
         *     gives the URL of the next page.
         */
        get: operations["listSessions"];
        put?: never;
        post?: never;
        /**
         * Log out everywhere
         * @description Revokes every session of the user, this one included. Access tokens
         *     already issued stay valid until they expire.
         */
        delete: operations["revokeAllSessions"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/sessions/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /**
         * Revoke one of my sessions
         * @description Revokes the session (its whole refresh-token family): that device is
         *     logged out at its next refresh. Another user's, an unknown and an
         *     already revoked id are all 404 `session_not_found` (never 403), so
         *     nothing about other users' sessions is revealed.
         */
        delete: operations["revokeSession"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Liveness
         * @description 200 while the process runs; touches nothing else.
         */
        get: operations["getHealth"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/readyz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Readiness
         * @description 200 when the database answers; 503 `service_unavailable` when it does not.
         */
        get: operations["getReadiness"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /**
         * AuthConfiguration
         * @description What clients and resource servers need to know about this instance.
         *     Durations are whole seconds.
         */
        AuthConfiguration: {
            /**
             * Format: uint64
             * @description Clock skew tolerated on `exp`, `nbf` and `iat`.
             */
            access_token_leeway: number;
            /** Format: uint64 */
            access_token_ttl: number;
            /** @description The `aud` of access tokens. */
            audience: string;
            /** @description The `iss` of access tokens. */
            issuer: string;
            /** @description Absolute URL of the JWK Set. */
            jwks_uri: string;
            refresh_cookie: components["schemas"]["RefreshCookieConfiguration"];
            /**
             * Format: uint64
             * @description Seconds after a rotation in which the rotated token yields the same successor; 0 = strict.
             */
            refresh_reuse_grace: number;
            /** Format: uint64 */
            refresh_token_ttl: number;
            /** Format: uint64 */
            session_max_lifetime: number;
        };
        /**
         * Health
         * @description Liveness or readiness.
         */
        Health: {
            /** @description `ok`. */
            status: string;
        };
        /**
         * Jwk
         * @description An Ed25519 public key (RFC 8037).
         */
        Jwk: {
            /** @description `EdDSA`. */
            alg: string;
            /** @description `Ed25519`. */
            crv: string;
            kid: string;
            /** @description `OKP`. */
            kty: string;
            /** @description `sig`. */
            use: string;
            /** @description The public key, base64url. */
            x: string;
        };
        /**
         * JwkSet
         * @description Every public key that may have signed a still-valid access token.
         */
        JwkSet: {
            keys: components["schemas"]["Jwk"][];
        };
        /**
         * LoginRequest
         * @description Credentials, and the channel for the refresh token. Unknown fields are refused.
         * @example {
         *       "email": "ada@example.com",
         *       "password": "correct horse battery staple",
         *       "refresh_token_in_body": false
         *     }
         */
        LoginRequest: {
            email: string;
            password: string;
            /**
             * @description `true` for non-browser clients: the refresh token comes in the body
             *     instead of the `HttpOnly` cookie. Default `false`.
             */
            refresh_token_in_body?: boolean | null;
        };
        /**
         * LogoutRequest
         * @description The refresh token to revoke, for body delivery; omit it to use the cookie.
         * @example {
         *       "refresh_token": "3q2-7wEXAMPLEu9Sx4f0Jq8h2m1c5V6bN7zK0pLrT1s"
         *     }
         */
        LogoutRequest: {
            refresh_token?: string | null;
        };
        /**
         * Problem
         * @description An error, as `application/problem+json` (RFC 9457). Clients branch on `code`.
         * @example {
         *       "code": "refresh_token_reused",
         *       "detail": "the refresh token was already used; the session has been revoked",
         *       "status": 401,
         *       "title": "Refresh token reused",
         *       "type": "urn:baton:problem:refresh_token_reused"
         *     }
         */
        Problem: {
            /** @description Stable machine-readable snake_case code: see the `ProblemCode` schema. */
            code: components["schemas"]["ProblemCode"] & unknown;
            /** @description What went wrong this time, for a person to read. */
            detail: string;
            /**
             * Format: uint64
             * @description On 429 and 503: seconds to wait before trying again (also in `Retry-After`).
             */
            retry_after?: number;
            /**
             * Format: uint16
             * @description The HTTP status code.
             */
            status: number;
            /** @description A short summary of the kind of problem; the same for every occurrence. */
            title: string;
            /** @description A URI naming the kind of problem (`urn:baton:problem:<code>`). */
            type: string;
        };
        /**
         * @description Every problem code this service can answer with.
         * @enum {string}
         */
        ProblemCode: "invalid_credentials" | "email_taken" | "validation_failed" | "registration_closed" | "missing_token" | "invalid_token" | "token_expired" | "refresh_token_invalid" | "refresh_token_expired" | "refresh_token_reused" | "session_revoked" | "session_not_found" | "origin_not_allowed" | "rate_limited" | "payload_too_large" | "unsupported_media_type" | "not_found" | "method_not_allowed" | "service_unavailable" | "request_timeout" | "header_fields_too_large" | "uri_too_long" | "bad_request" | "too_many_connections" | "internal_error";
        /**
         * RefreshCookieConfiguration
         * @description The refresh cookie as this instance sets it.
         */
        RefreshCookieConfiguration: {
            name: string;
            path: string;
            /** @description Always `Strict`. */
            same_site: string;
        };
        /**
         * RefreshRequest
         * @description The refresh token for body delivery; omit it (or send `{}`) to use the cookie.
         *     Unknown fields are refused, so a misspelt `refresh_token` cannot silently
         *     fall back to the cookie.
         * @example {
         *       "refresh_token": "3q2-7wEXAMPLEu9Sx4f0Jq8h2m1c5V6bN7zK0pLrT1s"
         *     }
         */
        RefreshRequest: {
            refresh_token?: string | null;
        };
        /**
         * RegisterRequest
         * @description Email and password of a new account. Unknown fields are refused.
         * @example {
         *       "email": "ada@example.com",
         *       "password": "correct horse battery staple"
         *     }
         */
        RegisterRequest: {
            /** @description Compared without regard to case: `A@x.test` and `a@x.test` are one account. */
            email: string;
            /** @description 8 to 128 characters (Unicode scalar values); anything goes otherwise. */
            password: string;
        };
        /**
         * Session
         * @description A live session (one login on one device, with its chain of refresh tokens).
         * @example {
         *       "created_at": "2026-11-18T11:06:40+00:00",
         *       "current": true,
         *       "expires_at": "2026-11-25T11:06:40+00:00",
         *       "id": "6a1f0e2d-9c8b-4a7e-b6d5-c4b3a2f1e0d9",
         *       "last_used_at": "2026-11-18T11:06:40+00:00",
         *       "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"
         *     }
         */
        Session: {
            /**
             * Format: date-time
             * @description The login.
             */
            created_at: string;
            /** @description True for the session of the access token making the call. */
            current: boolean;
            /**
             * Format: date-time
             * @description When its live refresh token expires.
             */
            expires_at: string;
            /** @description The session id: the `sid` claim of its access tokens. */
            id: string;
            /**
             * Format: date-time
             * @description The latest login or refresh.
             */
            last_used_at: string;
            /** @description As sent at the latest login or refresh. */
            user_agent: string | null;
        };
        /**
         * TokenPair
         * @description A token pair. `refresh_token` is present only on body delivery; browsers
         *     get it in the `HttpOnly` cookie instead.
         * @example {
         *       "access_token": "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCIsImtpZCI6Ii4uLiJ9.eyJzdWIiOiIuLi4ifQ.c2ln",
         *       "expires_in": 900,
         *       "refresh_expires_in": 604800,
         *       "token_type": "Bearer"
         *     }
         */
        TokenPair: {
            /** @description A JWT (`typ: at+jwt`, EdDSA) for `Authorization: Bearer`. */
            access_token: string;
            /**
             * Format: uint64
             * @description Seconds until the access token expires.
             */
            expires_in: number;
            /**
             * Format: uint64
             * @description Seconds until the refresh token expires.
             */
            refresh_expires_in: number;
            /** @description Only when the refresh token was asked for (or came) in the body. */
            refresh_token?: string;
            /** @description Always `Bearer`. */
            token_type: string;
        };
        /**
         * User
         * @description An account.
         * @example {
         *       "created_at": "2026-11-18T11:06:40+00:00",
         *       "email": "ada@example.com",
         *       "id": "0b7d2c1e-3f4a-4b5c-8d9e-0f1a2b3c4d5e"
         *     }
         */
        User: {
            /** Format: date-time */
            created_at: string;
            /** @description As registered. */
            email: string;
            id: string;
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    getAuthConfiguration: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description This instance's configuration. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AuthConfiguration"];
                };
            };
        };
    };
    getJwks: {
        parameters: {
            query?: never;
            header?: {
                /** @description The `ETag` of a copy the client holds (RFC 9110 §13.1.2). */
                "If-None-Match"?: string;
            };
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The JWK Set. */
            200: {
                headers: {
                    /**
                     * @description `public, max-age=30`: a verifier may use its copy for 30 seconds,
                     *     and must refetch (at most every few seconds) when a token names a
                     *     `kid` the copy lacks.
                     */
                    "CACHE-CONTROL": string;
                    /**
                     * @description A strong validator, the SHA-256 of the body: send it back in
                     *     `If-None-Match` to get a 304 while the keys are unchanged.
                     */
                    ETAG: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["JwkSet"];
                };
            };
            /**
             * @description The keys are unchanged since the copy whose `ETag` was sent in
             *     `If-None-Match`: keep using it for another `max-age`.
             */
            304: {
                headers: {
                    /** @description The same as on a 200. */
                    "CACHE-CONTROL": string;
                    /** @description The same as on a 200. */
                    ETAG: string;
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    login: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["LoginRequest"];
            };
        };
        responses: {
            /**
             * @description A new token pair. On cookie delivery the refresh token is in
             *     `Set-Cookie` (`HttpOnly; Secure; SameSite=Strict; Path=/auth`,
             *     `Max-Age` = its remaining life) and absent from the body.
             */
            200: {
                headers: {
                    /** @description Always `no-store`: token responses are never cached (RFC 6749 §5.1). */
                    "CACHE-CONTROL": string;
                    /**
                     * @description What is left of each policy: `"name";r=<remaining>;t=<seconds until
                     *     reset>`. Absent when throttling is off.
                     */
                    RATELIMIT?: string;
                    /**
                     * @description The quota policies that applied (draft-ietf-httpapi-ratelimit-headers):
                     *     a list of `"name";q=<quota>;w=<window seconds>` (login: `"login"`
                     *     attempts from this address, `"login-failures"` wrong passwords for
                     *     this account from this address; refresh: `"refresh"`). Absent when
                     *     throttling is off.
                     */
                    "RATELIMIT-POLICY"?: string;
                    /** @description The refresh cookie, on cookie delivery only. */
                    "SET-COOKIE"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TokenPair"];
                };
            };
            /** @description Not authenticated: see `code` (wrong credentials, or a refresh token that is missing, unknown, expired, reused or from a revoked session). */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 65,536 bytes (`payload_too_large`). */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`unsupported_media_type`). */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is malformed JSON, has a wrong type, a missing or unknown field, or a value that breaks a rule (`validation_failed`). */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Throttled (`rate_limited`): wait `Retry-After` seconds. */
            429: {
                headers: {
                    /** @description What is left of each policy: a list of `"name";r=<remaining>;t=<seconds until reset>`, e.g. `"login";r=29;t=60, "login-failures";r=5;t=60`. Absent when throttling is off. */
                    RateLimit?: string;
                    /** @description The quota policies that applied (draft-ietf-httpapi-ratelimit-headers): a list of `"name";q=<quota>;w=<window seconds>`, e.g. `"login";q=30;w=60, "login-failures";q=5;w=60`. Absent when throttling is off. */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before the next attempt. */
                    "Retry-After": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable (`service_unavailable`); retry later. */
            503: {
                headers: {
                    /** @description Seconds to wait before retrying. */
                    "Retry-After": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    logout: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: {
            content: {
                "application/json": components["schemas"]["LogoutRequest"];
            };
        };
        responses: {
            /**
             * @description Logged out: the session of the presented token (if any) is revoked and
             *     the refresh cookie is cleared.
             */
            204: {
                headers: {
                    /** @description Always `no-store`. */
                    "CACHE-CONTROL": string;
                    /** @description Clears the refresh cookie (`Max-Age=0`). */
                    "SET-COOKIE": string;
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Forbidden. */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 65,536 bytes (`payload_too_large`). */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`unsupported_media_type`). */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is malformed JSON, has a wrong type, a missing or unknown field, or a value that breaks a rule (`validation_failed`). */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable (`service_unavailable`); retry later. */
            503: {
                headers: {
                    /** @description Seconds to wait before retrying. */
                    "Retry-After": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getMe: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The account of the access token. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["User"];
                };
            };
            /** @description Not authenticated. For access tokens, `WWW-Authenticate: Bearer` says why (RFC 6750); `code` is `missing_token`, `invalid_token` or `token_expired`. */
            401: {
                headers: {
                    /** @description `Bearer` when no token was sent; `Bearer error="invalid_token", error_description="..."` when one was refused. */
                    "WWW-Authenticate": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable (`service_unavailable`); retry later. */
            503: {
                headers: {
                    /** @description Seconds to wait before retrying. */
                    "Retry-After": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    refresh: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: {
            content: {
                "application/json": components["schemas"]["RefreshRequest"];
            };
        };
        responses: {
            /**
             * @description A new token pair. On cookie delivery the refresh token is in
             *     `Set-Cookie` (`HttpOnly; Secure; SameSite=Strict; Path=/auth`,
             *     `Max-Age` = its remaining life) and absent from the body.
             */
            200: {
                headers: {
                    /** @description Always `no-store`: token responses are never cached (RFC 6749 §5.1). */
                    "CACHE-CONTROL": string;
                    /**
                     * @description What is left of each policy: `"name";r=<remaining>;t=<seconds until
                     *     reset>`. Absent when throttling is off.
                     */
                    RATELIMIT?: string;
                    /**
                     * @description The quota policies that applied (draft-ietf-httpapi-ratelimit-headers):
                     *     a list of `"name";q=<quota>;w=<window seconds>` (login: `"login"`
                     *     attempts from this address, `"login-failures"` wrong passwords for
                     *     this account from this address; refresh: `"refresh"`). Absent when
                     *     throttling is off.
                     */
                    "RATELIMIT-POLICY"?: string;
                    /** @description The refresh cookie, on cookie delivery only. */
                    "SET-COOKIE"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TokenPair"];
                };
            };
            /** @description Not authenticated: see `code` (wrong credentials, or a refresh token that is missing, unknown, expired, reused or from a revoked session). */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Forbidden. */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 65,536 bytes (`payload_too_large`). */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`unsupported_media_type`). */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is malformed JSON, has a wrong type, a missing or unknown field, or a value that breaks a rule (`validation_failed`). */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Throttled (`rate_limited`): wait `Retry-After` seconds. */
            429: {
                headers: {
                    /** @description What is left of each policy: a list of `"name";r=<remaining>;t=<seconds until reset>`, e.g. `"login";r=29;t=60, "login-failures";r=5;t=60`. Absent when throttling is off. */
                    RateLimit?: string;
                    /** @description The quota policies that applied (draft-ietf-httpapi-ratelimit-headers): a list of `"name";q=<quota>;w=<window seconds>`, e.g. `"login";q=30;w=60, "login-failures";q=5;w=60`. Absent when throttling is off. */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before the next attempt. */
                    "Retry-After": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable (`service_unavailable`); retry later. */
            503: {
                headers: {
                    /** @description Seconds to wait before retrying. */
                    "Retry-After": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    register: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["RegisterRequest"];
            };
        };
        responses: {
            /** @description The account was created. Log in to get tokens. */
            201: {
                headers: {
                    /**
                     * @description What is left: `"register";r=<remaining>;t=<seconds until reset>`.
                     *     Absent when throttling is off.
                     */
                    RATELIMIT?: string;
                    /**
                     * @description The quota policies that applied (draft-ietf-httpapi-ratelimit-headers):
                     *     `"register";q=<quota>;w=<window seconds>`. Absent when throttling is off.
                     */
                    "RATELIMIT-POLICY"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["User"];
                };
            };
            /** @description Forbidden. */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflict with the current state. */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 65,536 bytes (`payload_too_large`). */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`unsupported_media_type`). */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is malformed JSON, has a wrong type, a missing or unknown field, or a value that breaks a rule (`validation_failed`). */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Throttled (`rate_limited`): wait `Retry-After` seconds. */
            429: {
                headers: {
                    /** @description What is left of each policy: a list of `"name";r=<remaining>;t=<seconds until reset>`, e.g. `"login";r=29;t=60, "login-failures";r=5;t=60`. Absent when throttling is off. */
                    RateLimit?: string;
                    /** @description The quota policies that applied (draft-ietf-httpapi-ratelimit-headers): a list of `"name";q=<quota>;w=<window seconds>`, e.g. `"login";q=30;w=60, "login-failures";q=5;w=60`. Absent when throttling is off. */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before the next attempt. */
                    "Retry-After": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable (`service_unavailable`); retry later. */
            503: {
                headers: {
                    /** @description Seconds to wait before retrying. */
                    "Retry-After": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listSessions: {
        parameters: {
            query?: {
                /** @description How many sessions per page: 1 to 100 (default 50). */
                limit?: number;
                /**
                 * @description Where the page starts: the `cursor` of a previous reply's `Link`
                 *     header; omit it for the first page.
                 */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of the caller's live sessions, newest login first. */
            200: {
                headers: {
                    /**
                     * @description `</auth/sessions?limit=N&cursor=C>; rel="next"` (RFC 8288) when
                     *     more sessions follow; absent on the last page.
                     */
                    LINK?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Session"][];
                };
            };
            /** @description Not authenticated. For access tokens, `WWW-Authenticate: Bearer` says why (RFC 6750); `code` is `missing_token`, `invalid_token` or `token_expired`. */
            401: {
                headers: {
                    /** @description `Bearer` when no token was sent; `Bearer error="invalid_token", error_description="..."` when one was refused. */
                    "WWW-Authenticate": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is malformed JSON, has a wrong type, a missing or unknown field, or a value that breaks a rule (`validation_failed`). */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable (`service_unavailable`); retry later. */
            503: {
                headers: {
                    /** @description Seconds to wait before retrying. */
                    "Retry-After": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    revokeAllSessions: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Revoked: its refresh tokens no longer work. */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Not authenticated. For access tokens, `WWW-Authenticate: Bearer` says why (RFC 6750); `code` is `missing_token`, `invalid_token` or `token_expired`. */
            401: {
                headers: {
                    /** @description `Bearer` when no token was sent; `Bearer error="invalid_token", error_description="..."` when one was refused. */
                    "WWW-Authenticate": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable (`service_unavailable`); retry later. */
            503: {
                headers: {
                    /** @description Seconds to wait before retrying. */
                    "Retry-After": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    revokeSession: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The session id (`id` from the list, `sid` of an access token). */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Revoked: its refresh tokens no longer work. */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Not authenticated. For access tokens, `WWW-Authenticate: Bearer` says why (RFC 6750); `code` is `missing_token`, `invalid_token` or `token_expired`. */
            401: {
                headers: {
                    /** @description `Bearer` when no token was sent; `Bearer error="invalid_token", error_description="..."` when one was refused. */
                    "WWW-Authenticate": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Not found. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The database is unavailable (`service_unavailable`); retry later. */
            503: {
                headers: {
                    /** @description Seconds to wait before retrying. */
                    "Retry-After": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getHealth: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Up. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
        };
    };
    getReadiness: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Up. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
            /** @description The database is unavailable (`service_unavailable`); retry later. */
            503: {
                headers: {
                    /** @description Seconds to wait before retrying. */
                    "Retry-After": string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
}
