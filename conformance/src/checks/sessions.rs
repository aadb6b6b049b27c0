//! §1 and §3: logout and the session endpoints.

use serde_json::{Value, json};

use super::endpoints::is_rfc3339_utc;
use super::refresh::{REFRESH_401_CODES, expect_refresh_rejected};
use crate::ensure;
use crate::http::Req;
use crate::jwt::Jws;
use crate::probe::{Channel, Outcome, Probe, Stop, Tokens, expect_problem, fail, problem_shape};

fn sid(tokens: &Tokens) -> Result<String, Stop> {
    Jws::parse(&tokens.access_token)
        .map_err(fail)?
        .claim_str("sid")
        .map(str::to_string)
        .ok_or_else(|| fail("the access token has no sid"))
}

/// Whether the access token's `exp` had passed at `at` (local clock).
fn token_expired_by(access_token: &str, at: f64) -> bool {
    Jws::parse(access_token)
        .ok()
        .and_then(|j| j.claim_i64("exp"))
        .is_some_and(|exp| (exp as f64) < at)
}

fn logout_with(probe: &Probe, token: Option<&str>, channel: Channel) -> Result<Req, Stop> {
    Ok(match (token, channel) {
        (None, _) => Req::post("/auth/logout"),
        (Some(t), Channel::Body) => Req::post("/auth/logout").json(&json!({"refresh_token": t})),
        (Some(t), Channel::Cookie) => Req::post("/auth/logout").cookie(&probe.cookie_name()?, t),
    }
    .expect("204"))
}

async fn expect_logout_204(
    probe: &Probe,
    token: Option<&str>,
    channel: Channel,
    what: &str,
) -> Outcome {
    let reply = probe.send(logout_with(probe, token, channel)?).await?;
    ensure!(
        reply.status == 204,
        "{what}: expected 204, got {}",
        reply.summary()
    );
    let name = probe.cookie_name()?;
    ensure!(
        reply.set_cookie(&name).is_some_and(|c| c.is_clearing()),
        "{what}: the logout does not clear the {name} cookie (it must, always)"
    );
    Ok(())
}

pub async fn logout_revokes_family(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let cookie = probe.login(&user, Channel::Cookie).await?;
    expect_logout_204(
        &probe,
        Some(&cookie.refresh_token),
        Channel::Cookie,
        "a cookie logout",
    )
    .await?;
    expect_refresh_rejected(
        &probe,
        &cookie.refresh_token,
        Channel::Cookie,
        REFRESH_401_CODES,
        "the cookie token after its logout",
    )
    .await?;
    let a = probe.login(&user, Channel::Body).await?;
    let b = probe.refresh(&a.refresh_token, Channel::Body).await?;
    expect_logout_204(
        &probe,
        Some(&a.refresh_token),
        Channel::Body,
        "a logout with the already rotated token A",
    )
    .await?;
    expect_refresh_rejected(
        &probe,
        &b.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "the successor B after a logout with its rotated predecessor",
    )
    .await?;
    Ok(())
}

/// §1 "refresh token (body or cookie)" with the body winning, as for a refresh.
pub async fn logout_body_over_cookie(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let name = probe.cookie_name()?;
    let cookie = probe.login(&user, Channel::Cookie).await?;
    let body = probe.login(&user, Channel::Body).await?;
    let reply = probe
        .send(
            Req::post("/auth/logout")
                .cookie(&name, &cookie.refresh_token)
                .json(&json!({"refresh_token": body.refresh_token}))
                .expect("204"),
        )
        .await?;
    ensure!(
        reply.status == 204,
        "a logout with a body token and a cookie: expected 204, got {}",
        reply.summary()
    );
    expect_refresh_rejected(
        &probe,
        &body.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "the body token after a logout that carried it and a cookie (the body wins)",
    )
    .await?;
    probe
        .refresh(&cookie.refresh_token, Channel::Cookie)
        .await
        .map_err(|stop| match stop {
            Stop::Fail(f) => fail(format!(
                "a logout whose body named another token revoked the COOKIE's session: {}",
                f.message
            )),
            other => other,
        })?;
    Ok(())
}

pub async fn logout_idempotent(probe: Probe) -> Outcome {
    expect_logout_204(&probe, None, Channel::Body, "a logout with no token").await?;
    let unknown = crate::jwt::b64(uuid::Uuid::new_v4().as_bytes()).repeat(2);
    expect_logout_204(
        &probe,
        Some(&unknown),
        Channel::Body,
        "a logout with an unknown body token",
    )
    .await?;
    expect_logout_204(
        &probe,
        Some(&unknown),
        Channel::Cookie,
        "a logout with an unknown cookie",
    )
    .await?;
    let user = probe.user().await?;
    let tokens = probe.login(&user, Channel::Body).await?;
    expect_logout_204(
        &probe,
        Some(&tokens.refresh_token),
        Channel::Body,
        "the first logout",
    )
    .await?;
    expect_logout_204(
        &probe,
        Some(&tokens.refresh_token),
        Channel::Body,
        "the same logout again",
    )
    .await?;
    Ok(())
}

pub async fn logout_malformed_body(probe: Probe) -> Outcome {
    for body in [
        json!({"refresh_token": 5}),
        json!(["refresh_token"]),
        json!({"refresh_token": {"a": 1}}),
    ] {
        let reply = probe
            .send(Req::post("/auth/logout").json(&body).expect("4xx problem"))
            .await?;
        ensure!(
            (400..500).contains(&reply.status),
            "a logout with {body}: expected a 4xx, got {}",
            reply.summary()
        );
        problem_shape(&reply, &[]).map_err(|e| fail(format!("a logout with {body}: {e}")))?;
    }
    Ok(())
}

fn listed(reply: &crate::http::Reply) -> Result<Vec<Value>, Stop> {
    ensure!(
        reply.status == 200,
        "GET /auth/sessions: expected 200, got {}",
        reply.summary()
    );
    reply
        .json()
        .and_then(|v| v.as_array().cloned())
        .ok_or_else(|| {
            fail(format!(
                "GET /auth/sessions is not a JSON array: {}",
                reply.summary()
            ))
        })
}

/// The most pages a listing is followed through.
const MAX_PAGES: usize = 50;

/// `GET /auth/sessions` and every further page its `Link: <…>; rel="next"` names (the contract
/// allows a paged list). Returns the first reply (for its status) and every session listed.
pub(crate) async fn list_sessions(
    probe: &Probe,
    access_token: &str,
) -> Result<(crate::http::Reply, Vec<Value>), Stop> {
    let first = probe
        .send(
            Req::get("/auth/sessions")
                .bearer(access_token)
                .expect("200"),
        )
        .await?;
    if first.status != 200 {
        return Ok((first, Vec::new()));
    }
    let mut sessions = listed(&first)?;
    let mut next = first.next_link_from("/auth/sessions");
    for _ in 0..MAX_PAGES {
        let Some(path) = next else {
            return Ok((first, sessions));
        };
        let page = probe
            .send(Req::get(&path).bearer(access_token).expect("200"))
            .await?;
        sessions.extend(listed(&page)?);
        next = page.next_link_from(&path);
    }
    Err(fail(format!(
        "GET /auth/sessions still names a next page after {MAX_PAGES} pages"
    )))
}

pub async fn list(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let first = probe.login(&user, Channel::Cookie).await?;
    let second = probe.login(&user, Channel::Body).await?;
    let (sid1, sid2) = (sid(&first)?, sid(&second)?);
    let (reply, sessions) = list_sessions(&probe, &second.access_token).await?;
    listed(&reply)?;
    let created: Vec<_> = sessions
        .iter()
        .map(|s| {
            s.get("created_at")
                .and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        })
        .collect();
    ensure!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "the sessions are not listed newest first: {:?}",
        sessions
            .iter()
            .map(|s| s.get("created_at").cloned().unwrap_or(Value::Null))
            .collect::<Vec<_>>()
    );
    let find = |id: &str| {
        sessions
            .iter()
            .find(|s| s.get("id").and_then(Value::as_str) == Some(id))
            .cloned()
    };
    let one = find(&sid1)
        .ok_or_else(|| fail(format!("session {sid1} (the first login) is not listed")))?;
    let two = find(&sid2)
        .ok_or_else(|| fail(format!("session {sid2} (the second login) is not listed")))?;
    for s in [&one, &two] {
        for field in ["created_at", "last_used_at", "expires_at"] {
            ensure!(
                is_rfc3339_utc(s.get(field)),
                "{field} is not RFC 3339 UTC: {s}"
            );
        }
        ensure!(
            s.get("user_agent").is_some(),
            "user_agent is missing (it may be null, not absent): {s}"
        );
        ensure!(
            s.get("current").and_then(Value::as_bool).is_some(),
            "current is not a boolean: {s}"
        );
    }
    ensure!(
        two["current"] == json!(true),
        "the caller's own session is not marked current: {two}"
    );
    ensure!(
        one["current"] == json!(false),
        "another session is marked current: {one}"
    );
    ensure!(
        two.get("user_agent").and_then(Value::as_str) == Some("baton-conformance/0.1"),
        "user_agent is not the User-Agent sent at login: {two}"
    );
    let expires = two["expires_at"]
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    ensure!(
        expires.is_some_and(|e| e > chrono::Utc::now()),
        "expires_at of a live session is not in the future: {two}"
    );
    // A revoked session disappears from the list.
    let logout = probe
        .send(Req::post("/auth/logout").cookie(&probe.cookie_name()?, &first.refresh_token))
        .await?;
    ensure!(
        logout.status == 204,
        "logout: expected 204, got {}",
        logout.summary()
    );
    let (reply, after) = list_sessions(&probe, &second.access_token).await?;
    if reply.status == 401 && token_expired_by(&second.access_token, reply.sent_at) {
        return Ok(()); // the access token expired meanwhile: nothing more to see
    }
    listed(&reply)?;
    ensure!(
        !after
            .iter()
            .any(|s| s.get("id").and_then(Value::as_str) == Some(sid1.as_str())),
        "the logged-out session {sid1} is still listed"
    );
    Ok(())
}

pub async fn revoke_one(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let first = probe.login(&user, Channel::Body).await?;
    let second = probe.login(&user, Channel::Body).await?;
    let target = sid(&first)?;
    let reply = probe
        .send(
            Req::delete(&format!("/auth/sessions/{target}"))
                .bearer(&second.access_token)
                .expect("204"),
        )
        .await?;
    ensure!(
        reply.status == 204,
        "DELETE /auth/sessions/{{own session}}: expected 204, got {}",
        reply.summary()
    );
    expect_refresh_rejected(
        &probe,
        &first.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "the revoked session's token",
    )
    .await?;
    probe
        .refresh(&second.refresh_token, Channel::Body)
        .await
        .map_err(|stop| match stop {
            Stop::Fail(f) => fail(format!("revoking one session hit another: {}", f.message)),
            other => other,
        })?;
    let again = probe
        .send(
            Req::delete(&format!("/auth/sessions/{target}"))
                .bearer(&second.access_token)
                .expect("404"),
        )
        .await?;
    expect_problem(&again, 404, &[], "deleting an already revoked session")
}

/// §1 "an expired, never revoked one is revoked too": expiry is not revocation, so a session
/// whose refresh token has expired can still be deleted (204), and only then is it gone (404).
pub async fn revoke_expired(probe: Probe) -> Outcome {
    let config = probe.config()?.clone();
    if config.refresh_token_ttl + 2 > crate::discovery::MAX_WAIT_SECS {
        return Err(Stop::Skip(format!(
            "needs refresh_token_ttl ≤ {} s (BATON_REFRESH_TTL); this instance has {} s",
            crate::discovery::MAX_WAIT_SECS - 2,
            config.refresh_token_ttl
        )));
    }
    let user = probe.user().await?;
    let old = probe.login(&user, Channel::Body).await?;
    let target = sid(&old)?;
    let expired_at = old.reply.sent_at + old.refresh_expires_in as f64;
    super::wait((expired_at + 1.5 - crate::http::now()).max(0.0)).await;
    let caller = probe.login(&user, Channel::Body).await?;
    let reply = probe
        .send(
            Req::delete(&format!("/auth/sessions/{target}"))
                .bearer(&caller.access_token)
                .expect("204"),
        )
        .await?;
    ensure!(
        reply.status == 204,
        "DELETE /auth/sessions/{{own session whose refresh token has expired}}: expected 204 (an expired, never revoked session is revoked too), got {}",
        reply.summary()
    );
    let again = probe
        .send(
            Req::delete(&format!("/auth/sessions/{target}"))
                .bearer(&caller.access_token)
                .expect("404"),
        )
        .await?;
    expect_problem(&again, 404, &[], "deleting it again, now revoked")
}

pub async fn revoke_foreign(probe: Probe) -> Outcome {
    let owner = probe.user().await?;
    let intruder = probe.other_user().await?;
    let victim = probe.login(&owner, Channel::Body).await?;
    let attacker = probe.login(&intruder, Channel::Body).await?;
    let victim_sid = sid(&victim)?;
    let reply = probe
        .send(
            Req::delete(&format!("/auth/sessions/{victim_sid}"))
                .bearer(&attacker.access_token)
                .expect("404"),
        )
        .await?;
    expect_problem(&reply, 404, &[], "deleting another user's session")?;
    let unknown = uuid::Uuid::new_v4();
    let reply = probe
        .send(
            Req::delete(&format!("/auth/sessions/{unknown}"))
                .bearer(&attacker.access_token)
                .expect("404"),
        )
        .await?;
    expect_problem(&reply, 404, &[], "deleting an unknown session id")?;
    let reply = probe
        .send(
            Req::delete("/auth/sessions/not-a-uuid")
                .bearer(&attacker.access_token)
                .expect("404"),
        )
        .await?;
    ensure!(
        reply.status == 404 || reply.status == 422 || reply.status == 400,
        "deleting a malformed session id: expected 404 (or 4xx), got {}",
        reply.summary()
    );
    problem_shape(&reply, &[])
        .map_err(|e| fail(format!("deleting a malformed session id: {e}")))?;
    probe
        .refresh(&victim.refresh_token, Channel::Body)
        .await
        .map_err(|stop| match stop {
            Stop::Fail(f) => fail(format!(
                "another user's DELETE revoked the victim's session: {}",
                f.message
            )),
            other => other,
        })?;
    Ok(())
}

pub async fn revoke_all(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let first = probe.login(&user, Channel::Cookie).await?;
    let second = probe.login(&user, Channel::Body).await?;
    let reply = probe
        .send(
            Req::delete("/auth/sessions")
                .bearer(&second.access_token)
                .expect("204"),
        )
        .await?;
    ensure!(
        reply.status == 204,
        "DELETE /auth/sessions: expected 204, got {}",
        reply.summary()
    );
    expect_refresh_rejected(
        &probe,
        &first.refresh_token,
        Channel::Cookie,
        REFRESH_401_CODES,
        "the first session after log-out-everywhere",
    )
    .await?;
    expect_refresh_rejected(
        &probe,
        &second.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "the caller's own session after log-out-everywhere",
    )
    .await?;
    // The (stateless) access token still works, and the list is now empty.
    let (reply, sessions) = list_sessions(&probe, &second.access_token).await?;
    if reply.status == 401 && token_expired_by(&second.access_token, reply.sent_at) {
        return Ok(()); // the access token expired meanwhile: nothing more to see
    }
    listed(&reply)?;
    ensure!(
        sessions.is_empty(),
        "sessions are still listed after log-out-everywhere: {sessions:?}"
    );
    Ok(())
}

/// How many sessions `sessions/bounded` opens: more than any reasonable page.
pub(crate) const BOUNDED_LOGINS: usize = 120;
/// The most sessions one `GET /auth/sessions` response may hold.
pub(crate) const LIST_BOUND: usize = 100;
/// Logins run this many at a time, and must all be sent within this many seconds.
const BOUNDED_CONCURRENCY: usize = 4;
const BOUNDED_LOGIN_SECS: f64 = 60.0;
/// The most pages followed: a page of one session each, with room for other sessions of a
/// given (`--email`) account.
const BOUNDED_MAX_PAGES: usize = 300;
/// The refresh TTL and session lifetime it needs, so that every session stays live throughout.
const BOUNDED_MIN_TTL: u64 = 180;

/// One body-channel login of `sessions/bounded`; a 429 skips the check (throttling must be off).
async fn bounded_login(probe: &Probe, user: &crate::probe::User) -> Result<Tokens, Stop> {
    let req = Req::post("/auth/login")
        .json(
            &json!({"email": user.email, "password": user.password, "refresh_token_in_body": true}),
        )
        .expect("200");
    let reply = crate::http::send(&probe.env.instances, &probe.recorder, req)
        .await
        .map_err(|e| fail(format!("request failed: {e}")))?;
    if reply.status == 429 {
        return Err(Stop::Skip(format!(
            "logging in {BOUNDED_LOGINS} times was throttled (429): turn rate limiting off for this check (BATON_RATE_LIMITS=off)"
        )));
    }
    ensure!(
        reply.status == 200,
        "logging in (one of {BOUNDED_LOGINS} logins): expected 200, got {}",
        reply.summary()
    );
    probe.tokens(reply, Channel::Body)
}

/// §1 `GET /auth/sessions` "bounded in size whatever the number of sessions (paged, or a
/// per-user cap on live sessions)": one user logs in 120 times; no response may hold more than
/// 100 sessions. A paged server's pages (`Link: <…>; rel="next"`, any size, any cursor, any
/// target form) together list each live session once; a capping server lists fewer, and the
/// sessions it does not list are not live (their refresh is 401).
pub async fn bounded(probe: Probe) -> Outcome {
    let config = probe.config()?.clone();
    if config.refresh_token_ttl.min(config.session_max_lifetime) < BOUNDED_MIN_TTL {
        return Err(Stop::Skip(format!(
            "needs refresh_token_ttl and session_max_lifetime ≥ {BOUNDED_MIN_TTL} s (BATON_REFRESH_TTL, BATON_SESSION_MAX_LIFETIME), so that {BOUNDED_LOGINS} sessions are live at once; this instance has {} s and {} s",
            config.refresh_token_ttl, config.session_max_lifetime
        )));
    }
    let user = probe.user().await?;
    let deadline = crate::http::now() + BOUNDED_LOGIN_SECS;
    let stopped = std::sync::atomic::AtomicBool::new(false);
    let results: Vec<Result<Tokens, Stop>> = {
        use futures::stream::{self, StreamExt};
        let (probe, user, stopped) = (&probe, &user, &stopped);
        stream::iter(0..BOUNDED_LOGINS)
            .map(|_| async move {
                use std::sync::atomic::Ordering;
                if stopped.load(Ordering::Relaxed) {
                    return Err(Stop::Skip("stopped".into()));
                }
                if crate::http::now() > deadline {
                    stopped.store(true, Ordering::Relaxed);
                    return Err(Stop::Skip(format!(
                        "{BOUNDED_LOGINS} logins took longer than {BOUNDED_LOGIN_SECS} s: the instance is too slow for this check"
                    )));
                }
                let result = bounded_login(probe, user).await;
                if result.is_err() {
                    stopped.store(true, Ordering::Relaxed);
                }
                result
            })
            .buffer_unordered(BOUNDED_CONCURRENCY)
            .collect()
            .await
    };
    let mut tokens = Vec::new();
    let (mut failure, mut skipped) = (None, None);
    for result in results {
        match result {
            Ok(t) => tokens.push(t),
            Err(Stop::Skip(reason)) if reason == "stopped" => {}
            Err(Stop::Skip(reason)) => skipped = skipped.or(Some(Stop::Skip(reason))),
            Err(stop) => failure = failure.or(Some(stop)),
        }
    }
    let outcome = match failure.or(skipped) {
        Some(stop) => Err(stop),
        None => list_bounded(&probe, &mut tokens).await,
    };
    // Clean up with a recorder of its own, so that a failure's steps stay the listing's.
    let cleanup = probe.fresh();
    {
        use futures::stream::{self, StreamExt};
        let cleanup = &cleanup;
        stream::iter(tokens.iter())
            .for_each_concurrent(BOUNDED_CONCURRENCY, |t| async move {
                let _ = cleanup
                    .send(
                        Req::post("/auth/logout").json(&json!({"refresh_token": t.refresh_token})),
                    )
                    .await;
            })
            .await;
    }
    outcome
}

/// The listing half of `sessions/bounded`, over the sessions in `tokens` (all live).
async fn list_bounded(probe: &Probe, tokens: &mut [Tokens]) -> Outcome {
    let mut ours = std::collections::HashMap::new();
    for (i, t) in tokens.iter().enumerate() {
        ours.insert(sid(t)?, i);
    }
    // A fresh access token from the newest session (the access TTL may be short).
    let newest = (0..tokens.len())
        .max_by(|&a, &b| {
            tokens[a]
                .reply
                .received_at
                .total_cmp(&tokens[b].reply.received_at)
        })
        .ok_or_else(|| fail("no login succeeded"))?;
    let mut access = String::new();
    let mut path = "/auth/sessions".to_string();
    let mut visited = std::collections::HashSet::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut created = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        ensure!(
            pages <= BOUNDED_MAX_PAGES,
            "GET /auth/sessions still names a next page after {BOUNDED_MAX_PAGES} pages ({} sessions listed)",
            seen.len()
        );
        ensure!(
            visited.insert(path.clone()),
            "the next link of page {} names {path}, a page already read: the pages never end",
            pages - 1
        );
        if access.is_empty() || token_expired_by(&access, crate::http::now() + 1.0) {
            let fresh = probe
                .refresh(&tokens[newest].refresh_token, Channel::Body)
                .await?;
            access = fresh.access_token.clone();
            tokens[newest] = fresh;
        }
        let reply = probe
            .send(
                Req::get(&path)
                    .bearer(&access)
                    .expect(format!("200 with at most {LIST_BOUND} sessions")),
            )
            .await?;
        let items = listed(&reply)?;
        ensure!(
            items.len() <= LIST_BOUND,
            "one response (page {pages}, GET {path}) holds {} sessions, more than {LIST_BOUND}: with {} live sessions the list is not bounded in size (page it with Link: <…>; rel=\"next\", or cap the live sessions per user)",
            items.len(),
            tokens.len()
        );
        for item in &items {
            let id = item
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| fail(format!("a listed session has no id: {item}")))?;
            if let Some(first) = seen.insert(id.to_string(), pages) {
                return Err(fail(format!(
                    "session {id} is listed twice (pages {first} and {pages}): the pages together must list each live session once"
                )));
            }
            created.push(
                item.get("created_at")
                    .and_then(Value::as_str)
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()),
            );
        }
        match reply.next_link_from(&path) {
            Some(next) => path = next,
            None => break,
        }
    }
    ensure!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "over the {pages} pages, the sessions are not listed newest first"
    );
    // A session of ours that no page lists must be gone (a per-user cap), not live and hidden.
    let mut unlisted: Vec<(String, usize)> = ours
        .iter()
        .filter(|(id, _)| !seen.contains_key(*id))
        .map(|(id, i)| (id.clone(), *i))
        .collect();
    unlisted.sort();
    for (id, i) in unlisted {
        let reply = probe
            .refresh_reply(&tokens[i].refresh_token, Channel::Body)
            .await?;
        ensure!(
            reply.status != 200,
            "session {id} is live (its refresh token still works) but none of the {pages} pages of GET /auth/sessions lists it: the pages together must list every live session"
        );
        ensure!(
            reply.status == 401,
            "session {id} is not listed, so it must not be live: its refresh was expected to be 401, got {}",
            reply.summary()
        );
    }
    Ok(())
}
