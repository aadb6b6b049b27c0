// A resource server that accepts Baton access tokens: `GET /whoami` answers the
// token's user and session, anything else needs a valid token too.
//
//   BATON_ISSUER=http://127.0.0.1:8080 PORT=3000 node verifier.mjs
//
// The rules are in docs/RESOURCE_SERVERS.md; each option below is one of them.
import http from 'node:http';
import { createRemoteJWKSet, jwtVerify, errors } from 'jose';

const issuer = required('BATON_ISSUER');
const audience = process.env.BATON_AUDIENCE ?? 'baton';
const jwksUri = process.env.BATON_JWKS_URI ?? `${issuer}/.well-known/jwks.json`;
const port = Number(process.env.PORT ?? 3000);

// jose caches the set for 10 minutes and refetches on an unknown kid at most every
// 30 s by default: follow Baton's max-age (30 s) and refetch after 5 s instead.
const jwks = createRemoteJWKSet(new URL(jwksUri), {
  cacheMaxAge: 30_000,
  cooldownDuration: 5_000,
  timeoutDuration: 5_000,
});

const LEEWAY_SECONDS = 5; // at most 5 s of clock skew, on exp, nbf and iat

export async function verifyAccessToken(token) {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    algorithms: ['EdDSA'], // never what the token says
    typ: 'at+jwt', // RFC 9068: not an ID token or any other JWT
    issuer,
    audience,
    clockTolerance: LEEWAY_SECONDS,
    // jose checks exp only when present: require it, and what we use.
    requiredClaims: ['exp', 'iat', 'sub', 'sid', 'jti'],
  });
  // jose checks that iat is not in the future only with maxTokenAge; do it here.
  if (payload.iat > Math.floor(Date.now() / 1000) + LEEWAY_SECONDS) {
    throw new errors.JWTClaimValidationFailed('"iat" is in the future', payload, 'iat');
  }
  if (typeof payload.sub !== 'string' || !payload.sub || typeof payload.sid !== 'string' || !payload.sid) {
    throw new errors.JWTClaimValidationFailed('"sub" and "sid" must be non-empty strings', payload);
  }
  return { sub: payload.sub, sid: payload.sid, kid: protectedHeader.kid };
}

// The middleware: a Bearer token (RFC 6750) or a 401 that says why.
async function authenticate(req, res) {
  const match = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(req.headers.authorization ?? '');
  if (!match) {
    refuse(res, 'Bearer', 'no bearer token');
    return null;
  }
  try {
    return await verifyAccessToken(match[1]);
  } catch (err) {
    // Every jose failure (bad signature, unknown kid, a claim) is a 401; other
    // errors (the JWKS is unreachable) are ours, not the client's.
    if (!(err instanceof errors.JOSEError) || err instanceof errors.JWKSTimeout) throw err;
    refuse(res, 'Bearer error="invalid_token"', err.code ?? err.message);
    return null;
  }
}

function refuse(res, challenge, reason) {
  res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': challenge });
  res.end(JSON.stringify({ error: 'invalid_token', error_description: reason }));
}

const server = http.createServer(async (req, res) => {
  try {
    const user = await authenticate(req, res);
    if (!user) return;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(user));
  } catch (err) {
    console.error('verification failed:', err.message);
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'temporarily_unavailable' }));
  }
});
server.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return value;
}
