"""Tokens for scripts/test-examples: well-formed attacks on a verifier.

    tokens.py mint DB MASTER_KEY_HEX KID ACCESS_TOKEN    prints {case: token} as JSON
    tokens.py unpublish DB KID                           ends KID's publication now

`mint` signs with Baton's own key (unsealed from the database with the master
key, as the server does), so each refusal case differs from the accepted
`valid` one in exactly one respect: a verifier that accepts it skipped that
check. `unpublish` stands in for the end of a retired key's retention window
(access_ttl + leeway + 60 s after a rotation) without waiting for it.
"""

import base64
import hashlib
import hmac
import json
import sqlite3
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def baton_signing_key(db, master_hex, kid):
    """server/src/domain/keys.rs: PKCS#8 sealed with ChaCha20-Poly1305 under
    HKDF-SHA256(master, info "baton/v1/signing-key-sealing"), nonce first, kid as AAD."""
    (sealed,) = db.execute(
        "select sealed_private_key from signing_keys where kid = ?", (kid,)
    ).fetchone()
    key = HKDF(hashes.SHA256(), 32, None, b"baton/v1/signing-key-sealing").derive(
        bytes.fromhex(master_hex)
    )
    pkcs8 = ChaCha20Poly1305(key).decrypt(sealed[:12], sealed[12:], kid.encode())
    # ed25519-dalek writes PKCS#8 v2 (with the public key), which cryptography
    # does not parse: take the seed, the OCTET STRING in the privateKey one.
    at = pkcs8.index(b"\x04\x22\x04\x20") + 4
    return Ed25519PrivateKey.from_private_bytes(pkcs8[at : at + 32])


def public_raw(private):
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def jws(header, claims, sign):
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def mint(db_path, master_hex, kid, access_token):
    real = json.loads(unb64(access_token.split(".")[1]))
    key = baton_signing_key(sqlite3.connect(db_path), master_hex, kid)
    now = int(time.time())
    good_header = {"alg": "EdDSA", "typ": "at+jwt", "kid": kid}
    good = {k: real[k] for k in ("iss", "aud", "sub", "sid")}
    good.update(iat=now, exp=now + 120, jti=f"minted-{now}")

    def signed(header=None, **changes):
        claims = {**good, **changes}
        claims = {k: v for k, v in claims.items() if v is not None}
        return jws({**good_header, **(header or {})}, claims, key.sign)

    foreign = Ed25519PrivateKey.generate()
    foreign_x = b64(public_raw(foreign))
    public_x = public_raw(key)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def hs256(secret):
        return lambda data: hmac.new(secret, data, hashlib.sha256).digest()

    unsigned = f"{b64(json.dumps({**good_header, 'alg': 'none'}).encode())}.{b64(json.dumps(good).encode())}."
    header, payload, signature = signed().split(".")
    tampered = {**good, "sub": good["sub"] + "0"}
    return {
        "accept": {"valid": signed()},
        "refuse": {
            "expired beyond the 5 s leeway": signed(iat=now - 127, exp=now - 7),
            "wrong audience": signed(aud="another-api"),
            "wrong issuer": signed(iss="http://issuer.invalid"),
            "typ JWT": signed({"typ": "JWT"}),
            "no typ": jws({"alg": "EdDSA", "kid": kid}, good, key.sign),
            "nbf in the future": signed(nbf=now + 60),
            "iat in the future": signed(iat=now + 60, exp=now + 180),
            "no exp": signed(exp=None),
            "no iss": signed(iss=None),
            "no aud": signed(aud=None),
            "no sid": signed(sid=None),
            "alg none": unsigned,
            "alg none, signature kept": unsigned + signature,
            "HS256 keyed with the public key's bytes": jws(
                {**good_header, "alg": "HS256"}, good, hs256(public_x)
            ),
            "HS256 keyed with the public key's PEM": jws(
                {**good_header, "alg": "HS256"}, good, hs256(public_pem)
            ),
            "HS256 keyed with the JWK's x": jws(
                {**good_header, "alg": "HS256"}, good, hs256(b64(public_x).encode())
            ),
            "a key not in the JWKS": jws(
                {**good_header, "kid": "not-" + kid}, good, foreign.sign
            ),
            "a key not in the JWKS, under Baton's kid": jws(good_header, good, foreign.sign),
            "a key not in the JWKS, embedded as jwk": jws(
                {**good_header, "kid": "embedded", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": foreign_x}},
                good,
                foreign.sign,
            ),
            "payload changed after signing": f"{header}.{b64(json.dumps(tampered).encode())}.{signature}",
        },
    }


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "mint":
        print(json.dumps(mint(*args)))
    elif command == "unpublish":
        db_path, kid = args
        with sqlite3.connect(db_path) as db:
            changed = db.execute(
                "update signing_keys set verify_until = ? where kid = ? and retired_at is not null",
                (int(time.time() * 1000), kid),
            ).rowcount
        sys.exit(0 if changed == 1 else f"unpublish: no retired key {kid}")
    else:
        sys.exit(f"unknown command {command}")
