#!/usr/bin/env python3
"""Prepares a running Baton for scripts/bench (stdlib only).

Registers the bench users, then logs in `--sessions` times in parallel (each
login is one Argon2id hash, so this is bounded: ~200 logins take a few
seconds on 2 cores) and writes one live refresh token per session to
`--tokens`, one per line. The refresh scenario chains each session's
successors itself, so this pool never needs to be larger than a few times
wrk's connection count. Also writes each session's access token to `--access-tokens` (the
`/auth/me` scenarios use them in turn). Prints a JSON object with the login
credentials and how long preparation took.
"""

import argparse
import concurrent.futures
import json
import sys
import time
import urllib.error
import urllib.request


def post(base, path, body):
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def register(base, email, password):
    status, body = post(base, "/auth/register", {"email": email, "password": password})
    if status not in (201, 409):
        sys.exit(f"prepare: register {email}: {status} {body}")


def login(base, email, password):
    status, body = post(
        base,
        "/auth/login",
        {"email": email, "password": password, "refresh_token_in_body": True},
    )
    if status != 200 or not body.get("refresh_token"):
        sys.exit(f"prepare: login {email}: {status} {body}")
    return body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--tokens", required=True, help="refresh tokens, one per line")
    ap.add_argument("--access-tokens", required=True, help="access tokens, one per line")
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()

    started = time.monotonic()
    password = "bench-password-0123456789"
    users = [f"bench-user-{i}@bench.test" for i in range(args.users)]
    login_user = "bench-login@bench.test"
    with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(lambda u: register(args.base, u, password), users + [login_user]))
        pairs = list(
            pool.map(
                lambda i: login(args.base, users[i % len(users)], password),
                range(args.sessions),
            )
        )
    with open(args.tokens, "w") as f:
        for pair in pairs:
            f.write(pair["refresh_token"] + "\n")
    with open(args.access_tokens, "w") as f:
        for pair in pairs:
            f.write(pair["access_token"] + "\n")
    json.dump(
        {
            "login_email": login_user,
            "login_password": password,
            "sessions": len(pairs),
            "users": len(users) + 1,
            "seconds": round(time.monotonic() - started, 2),
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
