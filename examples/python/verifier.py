"""A resource server that accepts Baton access tokens, as WSGI middleware.

    BATON_ISSUER=http://127.0.0.1:8080 PORT=3001 python verifier.py

`BatonAuth(app)` wraps any WSGI app (Flask's `app.wsgi_app`, Django's
`get_wsgi_application()`): a request reaches it only with a valid token, whose
claims it finds in `environ["baton.claims"]`. The rules are in
docs/RESOURCE_SERVERS.md; each argument below is one of them.
"""

import json
import os
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import jwt  # PyJWT, with `cryptography` for EdDSA

LEEWAY_SECONDS = 5  # at most 5 s of clock skew, on exp, nbf and iat


class BatonAuth:
    def __init__(self, app, issuer, audience, jwks_uri):
        self.app = app
        self.issuer = issuer
        self.audience = audience
        # PyJWT caches the set for 300 s and refetches on an unknown kid at most
        # every 30 s by default: follow Baton's max-age (30 s), refetch after 5 s.
        # (Leave cache_keys off: that cache never forgets a key.)
        self.jwks = jwt.PyJWKClient(
            jwks_uri, lifespan=30, cooldown_duration=5, timeout=5
        )

    def verify(self, token):
        header = jwt.get_unverified_header(token)
        # PyJWT never looks at typ: RFC 9068 tokens say at+jwt.
        if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
            raise jwt.InvalidTokenError("typ is not at+jwt")
        key = self.jwks.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key,
            algorithms=["EdDSA"],  # never what the token says
            issuer=self.issuer,
            audience=self.audience,
            leeway=LEEWAY_SECONDS,
            # PyJWT checks exp only when present: require it, and what we use.
            options={"require": ["exp", "iat", "iss", "aud", "sub", "sid", "jti"]},
        )
        if not isinstance(claims["sid"], str) or not claims["sid"] or not claims["sub"]:
            raise jwt.InvalidTokenError("sub and sid must be non-empty strings")
        return claims, header["kid"]

    def __call__(self, environ, start_response):
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return refuse(start_response, "Bearer", "no bearer token")
        try:
            claims, kid = self.verify(token)
        except jwt.PyJWKClientConnectionError:
            # The JWKS is unreachable: our problem, not the client's.
            start_response("503 Service Unavailable", [("Content-Type", "application/json")])
            return [b'{"error":"temporarily_unavailable"}']
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as e:
            return refuse(start_response, 'Bearer error="invalid_token"', str(e))
        environ["baton.claims"] = claims
        environ["baton.kid"] = kid
        return self.app(environ, start_response)


def refuse(start_response, challenge, reason):
    body = json.dumps({"error": "invalid_token", "error_description": reason})
    start_response(
        "401 Unauthorized",
        [("Content-Type", "application/json"), ("WWW-Authenticate", challenge)],
    )
    return [body.encode()]


def whoami(environ, start_response):
    claims = environ["baton.claims"]
    body = {"sub": claims["sub"], "sid": claims["sid"], "kid": environ["baton.kid"]}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


if __name__ == "__main__":
    issuer = os.environ.get("BATON_ISSUER") or sys.exit("BATON_ISSUER is required")
    app = BatonAuth(
        whoami,
        issuer=issuer,
        audience=os.environ.get("BATON_AUDIENCE", "baton"),
        jwks_uri=os.environ.get("BATON_JWKS_URI", f"{issuer}/.well-known/jwks.json"),
    )
    port = int(os.environ.get("PORT", "3001"))
    with make_server("127.0.0.1", port, app, ThreadingServer, QuietHandler) as server:
        print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
        server.serve_forever()
