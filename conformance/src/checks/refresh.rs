//! §3: refresh tokens: entropy, rotation, reuse detection, grace, concurrency and expiry.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::join_all;
use serde_json::json;

use super::endpoints::check_token_pair;
use super::wait;
use crate::discovery::MAX_WAIT_SECS;
use crate::ensure;
use crate::http::{Reply, Req, now};
use crate::jwt::Jws;
use crate::probe::{Channel, Outcome, Probe, Stop, Tokens, expect_problem, fail, skip};

/// The codes a refresh 401 may carry: any. The contract pins the status of every refresh
/// failure (401, a definitive answer a client logs out on, §6) and that the body is a problem
/// with a snake_case `code`, but not which code each kind of failure gets (Baton's are
/// `refresh_token_invalid`, `_expired`, `_reused` and `session_revoked`; another implementation
/// may name them otherwise or add its own).
pub(crate) const REFRESH_401_CODES: &[&str] = &[];

fn sid(tokens: &Tokens) -> Result<String, Stop> {
    let jws = Jws::parse(&tokens.access_token).map_err(fail)?;
    jws.claim_str("sid")
        .map(str::to_string)
        .ok_or_else(|| fail("the access token has no sid"))
}

/// Presents `token` and requires a 401 refresh problem (and a cleared cookie on the cookie channel).
pub(crate) async fn expect_refresh_rejected(
    probe: &Probe,
    token: &str,
    channel: Channel,
    codes: &[&str],
    what: &str,
) -> Result<Reply, Stop> {
    let req = probe
        .refresh_req(token, channel)?
        .expect(if codes.is_empty() {
            "401 problem".to_string()
        } else {
            format!("401 {}", codes.join("|"))
        });
    let reply = probe.send(req).await?;
    if reply.status == 200 {
        return Err(fail(format!(
            "{what}: expected 401, but the refresh SUCCEEDED (200)"
        )));
    }
    expect_problem(&reply, 401, codes, what)?;
    if channel == Channel::Cookie {
        let name = probe.cookie_name()?;
        ensure!(
            reply.set_cookie(&name).is_some_and(|c| c.is_clearing()),
            "{what}: a 401 for a cookie refresh must clear the cookie (Max-Age=0)"
        );
    }
    Ok(reply)
}

fn grace(probe: &Probe) -> Result<u64, Stop> {
    Ok(probe.config()?.refresh_reuse_grace)
}

pub async fn token_entropy(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let mut seen = Vec::new();
    let mut decoded: Vec<Vec<u8>> = Vec::new();
    let mut tokens_to_check = Vec::new();
    for channel in [Channel::Body, Channel::Cookie, Channel::Body] {
        let login = probe.login(&user, channel).await?;
        let rotated = probe.refresh(&login.refresh_token, channel).await?;
        tokens_to_check.push((channel, login.refresh_token));
        tokens_to_check.push((channel, rotated.refresh_token));
    }
    for (channel, t) in tokens_to_check {
        // base64url (RFC 4648 §5); its padding is optional.
        let unpadded = t.trim_end_matches('=');
        ensure!(
            unpadded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "the {} refresh token {t:?} is not base64url",
            channel.name()
        );
        let bytes = URL_SAFE_NO_PAD.decode(unpadded).map_err(|e| {
            fail(format!(
                "refresh token {t:?} does not decode as base64url: {e}"
            ))
        })?;
        ensure!(
            bytes.len() >= 32,
            "the refresh token carries {} bits, the contract requires at least 256",
            bytes.len() * 8
        );
        ensure!(
            Jws::parse(&t).is_err(),
            "the refresh token is a JWT; it must be opaque"
        );
        ensure!(!seen.contains(&t), "two tokens are the same");
        seen.push(t);
        decoded.push(bytes);
    }
    if let Some(position) = constant_byte_position(&decoded) {
        return Err(fail(format!(
            "byte {position} is the same in all {} refresh tokens (logins and rotations): part of each token is not random",
            decoded.len()
        )));
    }
    if let Some((i, j, differing)) = least_different_pair(&decoded) {
        return Err(fail(format!(
            "refresh tokens {} and {} differ in only {differing} of their bits: random tokens of 128 bits or more differ in about half (a shared prefix, a counter or a timestamp shows like this)",
            i + 1,
            j + 1
        )));
    }
    Ok(())
}

/// The pair of tokens whose bits differ least, when that is fewer than 64 over their common
/// length: two independent random tokens of ≥ 128 bits differ in half their bits (64 ± 6 for
/// 128 bits), so fewer than 64 in 256 means they share structure, not entropy.
pub(crate) fn least_different_pair(tokens: &[Vec<u8>]) -> Option<(usize, usize, u32)> {
    let mut worst: Option<(usize, usize, u32)> = None;
    for i in 0..tokens.len() {
        for j in i + 1..tokens.len() {
            let differing: u32 = tokens[i]
                .iter()
                .zip(&tokens[j])
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            if worst.is_none_or(|(_, _, w)| differing < w) {
                worst = Some((i, j, differing));
            }
        }
    }
    worst.filter(|(_, _, differing)| *differing < 64)
}

/// The first byte position that holds the same value in every token (random tokens of 6 or
/// more essentially never share one: 256^-5 per position).
pub(crate) fn constant_byte_position(tokens: &[Vec<u8>]) -> Option<usize> {
    let shortest = tokens.iter().map(Vec::len).min()?;
    if tokens.len() < 2 {
        return None;
    }
    (0..shortest).find(|&i| tokens.iter().all(|t| t[i] == tokens[0][i]))
}

pub async fn rotation_new_pair(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    for channel in [Channel::Body, Channel::Cookie] {
        let first = probe.login(&user, channel).await?;
        let second = probe.refresh(&first.refresh_token, channel).await?;
        check_token_pair(
            &probe,
            &second.reply.json().unwrap_or_default(),
            channel == Channel::Body,
            "a refresh",
        )?;
        ensure!(
            second.refresh_token != first.refresh_token,
            "the {} refresh returned the presented refresh token",
            channel.name()
        );
        ensure!(
            sid(&second)? == sid(&first)?,
            "the new access token is in another family (sid changed)"
        );
        let third = probe.refresh(&second.refresh_token, channel).await?;
        ensure!(
            third.refresh_token != second.refresh_token,
            "the second rotation returned its presented token"
        );
    }
    Ok(())
}

pub async fn rotation_old_token_rejected(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let a = probe.login(&user, Channel::Body).await?;
    let b = probe.refresh(&a.refresh_token, Channel::Body).await?;
    if grace(&probe)? > 0 {
        // Within a grace the old token is only reuse once its successor has been used.
        probe.refresh(&b.refresh_token, Channel::Body).await?;
    }
    expect_refresh_rejected(
        &probe,
        &a.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "presenting the rotated token A again",
    )
    .await?;
    Ok(())
}

pub async fn rotation_channel(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let name = probe.cookie_name()?;
    let body_login = probe.login(&user, Channel::Body).await?;
    let body_refresh = probe
        .refresh_reply(&body_login.refresh_token, Channel::Body)
        .await?;
    ensure!(
        body_refresh.status == 200,
        "body refresh: expected 200, got {}",
        body_refresh.summary()
    );
    ensure!(
        body_refresh.str_field("refresh_token").is_some(),
        "body in: the new refresh token is not in the body"
    );
    ensure!(
        body_refresh
            .set_cookie(&name)
            .is_none_or(|c| c.is_clearing()),
        "body in: the response also sets the {name} cookie"
    );
    let cookie_login = probe.login(&user, Channel::Cookie).await?;
    let cookie_refresh = probe
        .refresh_reply(&cookie_login.refresh_token, Channel::Cookie)
        .await?;
    ensure!(
        cookie_refresh.status == 200,
        "cookie refresh: expected 200, got {}",
        cookie_refresh.summary()
    );
    ensure!(
        cookie_refresh
            .json()
            .and_then(|b| b.get("refresh_token").cloned())
            .is_none_or(|v| v.is_null()),
        "cookie in: the new refresh token is in the body, where JavaScript can read it"
    );
    ensure!(
        cookie_refresh
            .set_cookie(&name)
            .is_some_and(|c| !c.is_clearing()),
        "cookie in: the response sets no new {name} cookie"
    );
    // Under no member name either: on the cookie channel the token never reaches JavaScript (§6).
    let new_cookie = cookie_refresh
        .set_cookie(&name)
        .map(|c| c.value)
        .unwrap_or_default();
    for (what, reply, token) in [
        (
            "the cookie login",
            &cookie_login.reply,
            &cookie_login.refresh_token,
        ),
        ("the cookie refresh", &cookie_refresh, &new_cookie),
    ] {
        ensure!(
            token.is_empty() || !reply.body_text().contains(token.as_str()),
            "{what} echoes the refresh token in its body, where JavaScript can read it"
        );
    }
    Ok(())
}

pub async fn reuse_revokes_family(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let a = probe.login(&user, Channel::Body).await?;
    let b = probe.refresh(&a.refresh_token, Channel::Body).await?;
    let c = probe.refresh(&b.refresh_token, Channel::Body).await?;
    expect_refresh_rejected(
        &probe,
        &a.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "replaying A after A→B→C",
    )
    .await?;
    expect_refresh_rejected(
        &probe,
        &c.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "the newest token C after the replay of A (the family must be revoked)",
    )
    .await?;
    expect_refresh_rejected(
        &probe,
        &b.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "B after the family was revoked",
    )
    .await?;
    Ok(())
}

pub async fn reuse_strict(probe: Probe) -> Outcome {
    if grace(&probe)? > 0 {
        return Err(skip(
            "needs refresh_reuse_grace 0 (BATON_REFRESH_REUSE_GRACE=0s)",
        ));
    }
    let user = probe.user().await?;
    for channel in [Channel::Body, Channel::Cookie] {
        let a = probe.login(&user, channel).await?;
        let b = probe.refresh(&a.refresh_token, channel).await?;
        expect_refresh_rejected(
            &probe,
            &a.refresh_token,
            channel,
            REFRESH_401_CODES,
            "replaying A right after A→B",
        )
        .await?;
        expect_refresh_rejected(
            &probe,
            &b.refresh_token,
            channel,
            REFRESH_401_CODES,
            "B after the replay of A",
        )
        .await?;
    }
    Ok(())
}

pub async fn reuse_after_grace(probe: Probe) -> Outcome {
    let g = grace(&probe)?;
    if g == 0 {
        return Err(skip(
            "needs refresh_reuse_grace > 0 (with 0, refresh/reuse/strict covers it)",
        ));
    }
    if g + 2 > MAX_WAIT_SECS {
        return Err(skip(format!(
            "needs refresh_reuse_grace ≤ {} s (BATON_REFRESH_REUSE_GRACE); this instance has {g} s",
            MAX_WAIT_SECS - 2
        )));
    }
    let user = probe.user().await?;
    let a = probe.login(&user, Channel::Body).await?;
    let b = probe.refresh(&a.refresh_token, Channel::Body).await?;
    let refresh_ttl = probe.config()?.refresh_token_ttl;
    if g + 2 >= refresh_ttl {
        return Err(skip(format!(
            "needs refresh_reuse_grace + 2 s < refresh_token_ttl ({g} s vs {refresh_ttl} s)"
        )));
    }
    wait(g as f64 + 1.5).await;
    expect_refresh_rejected(
        &probe,
        &a.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "replaying A after the grace",
    )
    .await?;
    expect_refresh_rejected(
        &probe,
        &b.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "B after the replay of A",
    )
    .await?;
    Ok(())
}

pub async fn grace_same_successor(probe: Probe) -> Outcome {
    let g = grace(&probe)?;
    if g == 0 {
        return Err(skip(
            "needs refresh_reuse_grace > 0 (e.g. BATON_REFRESH_REUSE_GRACE=10s)",
        ));
    }
    if g < 2 {
        return Err(skip(
            "needs refresh_reuse_grace ≥ 2 s to repeat a refresh safely within it",
        ));
    }
    let user = probe.user().await?;
    for channel in [Channel::Body, Channel::Cookie] {
        let a = probe.login(&user, channel).await?;
        let b = probe.refresh(&a.refresh_token, channel).await?;
        for attempt in 1..=2 {
            let repeat = probe.refresh_reply(&a.refresh_token, channel).await?;
            ensure!(
                repeat.received_at - b.reply.sent_at < g as f64,
                "the repeat took longer than the grace; use a larger BATON_REFRESH_REUSE_GRACE"
            );
            ensure!(
                repeat.status == 200,
                "{} channel, repeat {attempt} of A within the grace while B is unused: expected 200, got {}",
                channel.name(),
                repeat.summary()
            );
            let again = probe.tokens(repeat, channel)?;
            ensure!(
                again.refresh_token == b.refresh_token,
                "{} channel, repeat {attempt} of A within the grace returned a DIFFERENT refresh token than the successor B: the family forked",
                channel.name()
            );
            ensure!(
                sid(&again)? == sid(&b)?,
                "{} channel, repeat {attempt}: the access token is not of the family (sid changed)",
                channel.name()
            );
            // The same token B, so the same remaining life: a repeat never extends it.
            ensure!(
                again.refresh_expires_in <= b.refresh_expires_in + 1,
                "{} channel, repeat {attempt}: refresh_expires_in {} is more than the successor's own {} (the remaining life of one token cannot grow)",
                channel.name(),
                again.refresh_expires_in,
                b.refresh_expires_in
            );
            if channel == Channel::Cookie {
                super::web::set_cookie_violations(
                    &probe,
                    &again.reply,
                    again.refresh_expires_in,
                    &format!("repeat {attempt}'s cookie"),
                )?;
            }
        }
        let c = probe.refresh(&b.refresh_token, channel).await?;
        ensure!(
            c.refresh_token != b.refresh_token,
            "using B returned B again"
        );
        expect_refresh_rejected(
            &probe,
            &a.refresh_token,
            channel,
            REFRESH_401_CODES,
            "A again after its successor B was used",
        )
        .await?;
        expect_refresh_rejected(
            &probe,
            &c.refresh_token,
            channel,
            REFRESH_401_CODES,
            "C after the replay of A",
        )
        .await?;
    }
    Ok(())
}

/// The grace from both sides of its end: just inside, a repeat gets the same successor; just
/// after, it is reuse and the family is revoked.
pub async fn grace_boundary(probe: Probe) -> Outcome {
    let g = grace(&probe)? as f64;
    let ttl = probe.config()?.refresh_token_ttl as f64;
    if g < 2.0 || g + 2.0 > MAX_WAIT_SECS as f64 || g + 2.0 >= ttl {
        return Err(skip(format!(
            "needs 2 s ≤ refresh_reuse_grace ≤ {} s and grace + 2 s < refresh_token_ttl (BATON_REFRESH_REUSE_GRACE=3s, BATON_REFRESH_TTL=6s); this instance has {g} s and {ttl} s",
            MAX_WAIT_SECS - 2
        )));
    }
    let user = probe.user().await?;
    let a = probe.login(&user, Channel::Body).await?;
    let b = probe.refresh(&a.refresh_token, Channel::Body).await?;
    // The server rotated somewhere in [sent, received] of B's request.
    wait((b.reply.sent_at + g - 0.8 - now()).max(0.0)).await;
    let inside = probe.refresh_reply(&a.refresh_token, Channel::Body).await?;
    if inside.received_at < b.reply.sent_at + g {
        ensure!(
            inside.status == 200,
            "A presented {:.1} s after its rotation, inside the {g} s grace, while B is unused: expected 200 with B, got {}",
            inside.sent_at - b.reply.received_at,
            inside.summary()
        );
        let again = probe.tokens(inside, Channel::Body)?;
        ensure!(
            again.refresh_token == b.refresh_token,
            "A presented just inside the grace returned another refresh token than its successor B: the family forked"
        );
    }
    wait((b.reply.received_at + g + 0.7 - now()).max(0.0)).await;
    expect_refresh_rejected(
        &probe,
        &a.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "A presented just after the grace (reuse)",
    )
    .await?;
    expect_refresh_rejected(
        &probe,
        &b.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "B after A's reuse just after the grace (the family must be revoked)",
    )
    .await?;
    Ok(())
}

/// FAPI 2.0's lost response: the answer to a refresh never arrives, the client retries with
/// the token it still has, within the grace: the retry succeeds and the family lives on.
pub async fn grace_lost_response(probe: Probe) -> Outcome {
    if grace(&probe)? < 1 {
        return Err(skip(
            "needs refresh_reuse_grace ≥ 1 s (e.g. BATON_REFRESH_REUSE_GRACE=10s)",
        ));
    }
    let user = probe.user().await?;
    for channel in [Channel::Body, Channel::Cookie] {
        let a = probe.login(&user, channel).await?;
        // The response is lost: the client never learns the successor.
        let lost = probe.refresh_reply(&a.refresh_token, channel).await?;
        ensure!(
            lost.status == 200,
            "the first refresh: expected 200, got {}",
            lost.summary()
        );
        let retried = probe
            .refresh(&a.refresh_token, channel)
            .await
            .map_err(|stop| match stop {
                Stop::Fail(f) => fail(format!(
                    "{} channel: the retry of a refresh whose response was lost, within the grace: {}",
                    channel.name(),
                    f.message
                )),
                other => other,
            })?;
        let next = probe
            .refresh(&retried.refresh_token, channel)
            .await
            .map_err(|stop| match stop {
                Stop::Fail(f) => fail(format!(
                    "{} channel: the token the retry returned does not work, the family died: {}",
                    channel.name(),
                    f.message
                )),
                other => other,
            })?;
        probe.refresh(&next.refresh_token, channel).await?;
    }
    Ok(())
}

pub async fn grace_same_access_token(probe: Probe) -> Outcome {
    let g = grace(&probe)?;
    if g < 2 {
        return Err(skip(
            "needs refresh_reuse_grace ≥ 2 s (e.g. BATON_REFRESH_REUSE_GRACE=10s)",
        ));
    }
    let user = probe.user().await?;
    let a = probe.login(&user, Channel::Body).await?;
    let b = probe.refresh(&a.refresh_token, Channel::Body).await?;
    let repeat = probe.refresh(&a.refresh_token, Channel::Body).await?;
    ensure!(
        repeat.reply.received_at - b.reply.sent_at < g as f64,
        "the repeat took longer than the grace; use a larger BATON_REFRESH_REUSE_GRACE"
    );
    ensure!(
        repeat.refresh_token == b.refresh_token,
        "the repeat within the grace returned another refresh token than the successor B"
    );
    ensure!(
        repeat.access_token == b.access_token,
        "the repeat within the grace returned a fresh access token instead of B's: N racers then hold N working access tokens"
    );
    Ok(())
}

/// §3 "whether or not the rotated token has also expired": a token rotated late in its life,
/// presented again once it has also expired, is still reuse.
pub async fn reuse_expired_rotated(probe: Probe) -> Outcome {
    let config = probe.config()?.clone();
    let ttl = config.refresh_token_ttl as f64;
    if ttl + 2.0 > MAX_WAIT_SECS as f64 {
        return Err(skip(format!(
            "needs refresh_token_ttl ≤ {} s (BATON_REFRESH_TTL); this instance has {ttl} s",
            MAX_WAIT_SECS - 2
        )));
    }
    if ttl < 3.0 || (config.session_max_lifetime as f64) < ttl + 3.0 {
        return Err(skip(
            "needs refresh_token_ttl ≥ 3 s and session_max_lifetime ≥ refresh_token_ttl + 3 s",
        ));
    }
    let user = probe.user().await?;
    let a = probe.login(&user, Channel::Body).await?;
    let a_expires = a.reply.sent_at + a.refresh_expires_in as f64;
    // Rotate A late in its life, then use the successor, so A is reuse inside or after any grace.
    wait((a_expires - 2.0 - now()).max(0.0)).await;
    let b = probe.refresh(&a.refresh_token, Channel::Body).await?;
    let c = probe.refresh(&b.refresh_token, Channel::Body).await?;
    wait((a_expires + 1.5 - now()).max(0.0)).await;
    expect_refresh_rejected(
        &probe,
        &a.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "replaying A after it was rotated and has also expired",
    )
    .await?;
    expect_refresh_rejected(
        &probe,
        &c.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "the newest token C after the replay of the expired, rotated A (the family must be revoked)",
    )
    .await?;
    Ok(())
}

/// Reuse detection and the signing keys survive a restart of every instance (`--restart-cmd`).
pub async fn reuse_survives_restart(probe: Probe) -> Outcome {
    let Some(command) = probe.env.restart_cmd.clone() else {
        return Err(skip(
            "needs --restart-cmd CMD, a command that restarts every instance",
        ));
    };
    let user = probe.user().await?;
    let a = probe.login(&user, Channel::Body).await?;
    let b = probe.refresh(&a.refresh_token, Channel::Body).await?;
    let c = probe.refresh(&b.refresh_token, Channel::Body).await?;
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .status()
        .await
        .map_err(|e| fail(format!("--restart-cmd could not run: {e}")))?;
    ensure!(
        status.success(),
        "--restart-cmd {command:?} failed: {status}"
    );
    for i in 0..probe.env.instances.base_urls().len() {
        let mut up = false;
        for _ in 0..120 {
            let reply = crate::http::send(
                &probe.env.instances,
                &probe.recorder,
                Req::get("/healthz").on_instance(i),
            )
            .await;
            if reply.is_ok_and(|r| r.status == 200) {
                up = true;
                break;
            }
            wait(0.5).await;
        }
        ensure!(
            up,
            "instance {} did not answer /healthz within 60 s of the restart",
            i + 1
        );
    }
    let exp = Jws::parse(&c.access_token)
        .ok()
        .and_then(|j| j.claim_i64("exp"))
        .unwrap_or(0) as f64;
    let me = probe.me(&c.access_token).await?;
    if me.received_at < exp - 0.5 {
        ensure!(
            me.status == 200,
            "an access token issued before the restart, before its exp, is refused: the signing keys did not persist ({})",
            me.summary()
        );
    }
    expect_refresh_rejected(
        &probe,
        &a.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "replaying the rotated A after the restart",
    )
    .await?;
    expect_refresh_rejected(
        &probe,
        &c.refresh_token,
        Channel::Body,
        REFRESH_401_CODES,
        "the newest token C after the replay of A across the restart (the family must be revoked)",
    )
    .await?;
    Ok(())
}

/// §1 "refresh token from the body if given, else from the cookie".
pub async fn body_over_cookie(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let name = probe.cookie_name()?;
    let cookie = probe.login(&user, Channel::Cookie).await?;
    let body = probe.login(&user, Channel::Body).await?;
    let reply = probe
        .send(
            Req::post("/auth/refresh")
                .cookie(&name, &cookie.refresh_token)
                .json(&json!({"refresh_token": body.refresh_token}))
                .expect("200 with the body token's family, on the body channel"),
        )
        .await?;
    ensure!(
        reply.status == 200,
        "a refresh with a live body token and a live cookie: expected 200, got {}",
        reply.summary()
    );
    let rotated = probe.tokens(reply, Channel::Body).map_err(|stop| match stop {
        Stop::Fail(f) => fail(format!(
            "with both a body token and a cookie the body wins, so the answer comes in the body: {}",
            f.message
        )),
        other => other,
    })?;
    ensure!(
        sid(&rotated)? == sid(&body)?,
        "with both a body token and a cookie, the COOKIE's session was refreshed: the body must win"
    );
    // (The body token itself may still answer within a reuse grace, so it proves nothing here.)
    probe
        .refresh(&cookie.refresh_token, Channel::Cookie)
        .await
        .map_err(|stop| match stop {
            Stop::Fail(f) => fail(format!(
                "the cookie token must be untouched by a request whose body carried another token: {}",
                f.message
            )),
            other => other,
        })?;
    Ok(())
}

const CONCURRENT_REQUESTS: usize = 8;

async fn race(probe: &Probe, token: &str) -> Result<Vec<Reply>, Stop> {
    let req = probe.refresh_req(token, Channel::Body)?;
    join_all((0..CONCURRENT_REQUESTS).map(|_| probe.send(req.clone())))
        .await
        .into_iter()
        .collect()
}

pub async fn concurrency_single_winner(probe: Probe) -> Outcome {
    if grace(&probe)? > 0 {
        return Err(skip(
            "needs refresh_reuse_grace 0 (BATON_REFRESH_REUSE_GRACE=0s); with a grace refresh/concurrency/same-successor applies",
        ));
    }
    let user = probe.user().await?;
    for round in 1..=3 {
        let a = probe.login(&user, Channel::Body).await?;
        let replies = race(&probe, &a.refresh_token).await?;
        let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        let winners = statuses.iter().filter(|s| **s == 200).count();
        ensure!(
            winners == 1,
            "round {round}: {CONCURRENT_REQUESTS} concurrent refreshes with one token gave {winners} successes (statuses {statuses:?}); exactly one may succeed"
        );
        for r in replies.iter().filter(|r| r.status != 200) {
            expect_problem(
                r,
                401,
                REFRESH_401_CODES,
                &format!("round {round}: a losing concurrent refresh"),
            )?;
        }
    }
    Ok(())
}

pub async fn concurrency_same_successor(probe: Probe) -> Outcome {
    if grace(&probe)? == 0 {
        return Err(skip(
            "needs refresh_reuse_grace > 0 (e.g. BATON_REFRESH_REUSE_GRACE=10s)",
        ));
    }
    let user = probe.user().await?;
    for round in 1..=3 {
        let a = probe.login(&user, Channel::Body).await?;
        let replies = race(&probe, &a.refresh_token).await?;
        let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        ensure!(
            statuses.iter().all(|s| *s == 200),
            "round {round}: with a grace every concurrent refresh must get 200; statuses {statuses:?}"
        );
        let tokens: Vec<String> = replies
            .iter()
            .filter_map(|r| r.str_field("refresh_token"))
            .collect();
        ensure!(
            tokens.len() == CONCURRENT_REQUESTS,
            "round {round}: some 200s carry no refresh_token"
        );
        let distinct: std::collections::BTreeSet<&String> = tokens.iter().collect();
        ensure!(
            distinct.len() == 1,
            "round {round}: {} different new refresh tokens from one token: the family forked",
            distinct.len()
        );
        probe.refresh(&tokens[0], Channel::Body).await?;
    }
    Ok(())
}

/// The tightest race a client can make: one refresh per connection, CONCURRENT_REQUESTS of them
/// spread over every instance, all written up to their last byte and then released together.
/// Afterwards at most one of the refresh tokens handed out may still work (with a grace,
/// exactly one).
pub async fn last_byte_burst(probe: Probe) -> Outcome {
    let urls = probe.env.instances.base_urls().to_vec();
    let Some(authorities) = urls
        .iter()
        .map(|u| crate::burst::plain_http_authority(u))
        .collect::<Option<Vec<_>>>()
    else {
        return Err(skip(
            "needs plain http:// base URLs (the burst writes raw HTTP/1.1)",
        ));
    };
    let g = grace(&probe)?;
    let user = probe.user().await?;
    for round in 1..=2 {
        let a = probe.login(&user, Channel::Body).await?;
        let targets: Vec<String> = (0..CONCURRENT_REQUESTS)
            .map(|i| authorities[i % authorities.len()].clone())
            .collect();
        let body =
            serde_json::to_vec(&json!({"refresh_token": a.refresh_token})).unwrap_or_default();
        let replies = crate::burst::post_json_released_together(
            &targets,
            "/auth/refresh",
            &body,
            &probe.recorder,
        )
        .await
        .map_err(fail)?;
        let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        let winners = statuses.iter().filter(|s| **s == 200).count();
        if g == 0 {
            ensure!(
                winners == 1,
                "round {round}, grace 0: {CONCURRENT_REQUESTS} refreshes released together gave {winners} successes (statuses {statuses:?}); exactly one may succeed"
            );
        } else {
            ensure!(
                winners == CONCURRENT_REQUESTS,
                "round {round}, grace {g} s: every refresh released together must get 200; statuses {statuses:?}"
            );
        }
        for r in replies.iter().filter(|r| r.status != 200) {
            expect_problem(
                r,
                401,
                REFRESH_401_CODES,
                &format!("round {round}: a losing refresh"),
            )?;
        }
        let mut refresh_tokens: Vec<String> = replies
            .iter()
            .filter_map(|r| r.str_field("refresh_token"))
            .collect();
        refresh_tokens.sort();
        refresh_tokens.dedup();
        let access_tokens: std::collections::BTreeSet<String> = replies
            .iter()
            .filter_map(|r| r.str_field("access_token"))
            .collect();
        let mut working = 0;
        for token in &refresh_tokens {
            if probe.refresh_reply(token, Channel::Body).await?.status == 200 {
                working += 1;
            }
        }
        // With grace 0 the losers presented a rotated token, which is reuse: the family may be
        // over, so none need work. With a grace they converged, so the one token must work.
        let expected_working = if g == 0 { 0..=1 } else { 1..=1 };
        ensure!(
            refresh_tokens.len() == 1 && expected_working.contains(&working),
            "round {round}: the burst handed out {} distinct refresh tokens, of which {working} still work ({} distinct access tokens); a family has at most one live refresh token and must not fork",
            refresh_tokens.len(),
            access_tokens.len()
        );
    }
    Ok(())
}

pub async fn expiry(probe: Probe) -> Outcome {
    let ttl = probe.config()?.refresh_token_ttl;
    if ttl + 2 > MAX_WAIT_SECS {
        return Err(skip(format!(
            "needs refresh_token_ttl ≤ {} s (BATON_REFRESH_TTL); this instance has {ttl} s",
            MAX_WAIT_SECS - 2
        )));
    }
    let user = probe.user().await?;
    let a = probe.login(&user, Channel::Cookie).await?;
    let wait_secs = a.refresh_expires_in.max(0) as f64 + 1.5 - (now() - a.reply.received_at);
    wait(wait_secs.min(MAX_WAIT_SECS as f64)).await;
    expect_refresh_rejected(
        &probe,
        &a.refresh_token,
        Channel::Cookie,
        REFRESH_401_CODES,
        "a refresh token past its TTL",
    )
    .await?;
    Ok(())
}

pub async fn expiry_sliding(probe: Probe) -> Outcome {
    let config = probe.config()?.clone();
    let ttl = config.refresh_token_ttl as f64;
    if ttl * 1.2 + 1.0 > MAX_WAIT_SECS as f64 {
        return Err(skip(format!(
            "needs refresh_token_ttl ≤ {} s (BATON_REFRESH_TTL); this instance has {ttl} s",
            ((MAX_WAIT_SECS - 1) as f64 / 1.2) as u64
        )));
    }
    if (config.session_max_lifetime as f64) < ttl * 1.2 + 3.0 {
        return Err(skip(
            "needs session_max_lifetime ≥ 1.2 × refresh_token_ttl + 3 s",
        ));
    }
    let user = probe.user().await?;
    let mut current = probe.login(&user, Channel::Body).await?;
    let login_at = current.reply.received_at;
    while now() - login_at < ttl + 0.5 {
        wait(ttl * 0.6).await;
        current = probe
            .refresh(&current.refresh_token, Channel::Body)
            .await
            .map_err(|stop| match stop {
                Stop::Fail(f) => fail(format!(
                    "a refresh {:.1} s after the login, within the token's own TTL: {}",
                    now() - login_at,
                    f.message
                )),
                other => other,
            })?;
        // A new token lives the full TTL from its issue, unless the absolute limit comes first.
        let age = current.reply.received_at - login_at;
        let expected =
            (config.refresh_token_ttl as f64).min(config.session_max_lifetime as f64 - age);
        ensure!(
            (current.refresh_expires_in as f64 - expected).abs() <= 1.5,
            "a token rotated {age:.1} s after the login has refresh_expires_in {}, expected min(refresh_token_ttl {}, what is left of session_max_lifetime {}) ≈ {expected:.1}",
            current.refresh_expires_in,
            config.refresh_token_ttl,
            config.session_max_lifetime
        );
    }
    Ok(())
}

pub async fn expiry_absolute(probe: Probe) -> Outcome {
    let config = probe.config()?.clone();
    let max = config.session_max_lifetime as f64;
    if max + 2.0 > 20.0 {
        return Err(skip(format!(
            "needs session_max_lifetime ≤ 18 s (BATON_SESSION_MAX_LIFETIME); this instance has {max} s"
        )));
    }
    let user = probe.user().await?;
    let mut current = probe.login(&user, Channel::Body).await?;
    let login_at = current.reply.sent_at;
    let step = (config.refresh_token_ttl as f64 * 0.5).clamp(0.5, 4.0);
    loop {
        let remaining = max - (now() - login_at);
        ensure!(
            current.refresh_expires_in as f64 <= remaining + 2.0,
            "refresh_expires_in {} outlives the session's absolute limit ({remaining:.1} s left of session_max_lifetime {max})",
            current.refresh_expires_in
        );
        if now() - login_at > max + 1.5 {
            break;
        }
        wait(step.min((max + 1.6 - (now() - login_at)).max(0.1))).await;
        let reply = probe
            .refresh_reply(&current.refresh_token, Channel::Body)
            .await?;
        let age = reply.sent_at - login_at;
        if age > max + 1.0 {
            expect_problem(
                &reply,
                401,
                REFRESH_401_CODES,
                &format!("a refresh {age:.1} s after the login, past session_max_lifetime {max}"),
            )?;
            return Ok(());
        }
        if reply.status != 200 {
            ensure!(
                age > max - 1.5 || age + 0.5 > current.refresh_expires_in as f64,
                "a refresh {age:.1} s after the login (limit {max} s) failed: {}",
                reply.summary()
            );
            return Ok(());
        }
        current = probe.tokens(reply, Channel::Body)?;
    }
    Err(fail(format!(
        "the session lived past session_max_lifetime {max}"
    )))
}

pub async fn missing_token(probe: Probe) -> Outcome {
    let reply = probe
        .send(Req::post("/auth/refresh").expect("401 problem"))
        .await?;
    expect_problem(
        &reply,
        401,
        REFRESH_401_CODES,
        "a refresh with no token at all",
    )?;
    let reply = probe
        .send(
            Req::post("/auth/refresh")
                .json(&json!({}))
                .expect("401 problem"),
        )
        .await?;
    expect_problem(
        &reply,
        401,
        REFRESH_401_CODES,
        "a refresh with {} and no cookie",
    )
}

pub async fn unknown_token(probe: Probe) -> Outcome {
    let random = crate::jwt::b64(uuid::Uuid::new_v4().as_bytes()).repeat(2);
    expect_refresh_rejected(
        &probe,
        &random,
        Channel::Body,
        REFRESH_401_CODES,
        "an unknown token in the body",
    )
    .await?;
    expect_refresh_rejected(
        &probe,
        &random,
        Channel::Cookie,
        REFRESH_401_CODES,
        "an unknown token in the cookie",
    )
    .await?;
    Ok(())
}

pub async fn strict_body(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let a = probe.login(&user, Channel::Cookie).await?;
    let name = probe.cookie_name()?;
    let reply = probe
        .send(
            Req::post("/auth/refresh")
                .cookie(&name, &a.refresh_token)
                .json(&json!({"refresh_tokn": "x"}))
                .expect("422 validation_failed"),
        )
        .await?;
    expect_problem(
        &reply,
        422,
        &["validation_failed"],
        "a misspelt refresh_token field next to a valid cookie",
    )?;
    probe
        .refresh(&a.refresh_token, Channel::Cookie)
        .await
        .map_err(|stop| match stop {
            Stop::Fail(f) => fail(format!("the rejected request changed state: {}", f.message)),
            other => other,
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_that_share_most_bits_are_found() {
        let mut sha = Vec::new();
        for i in 0u8..6 {
            use sha2::Digest;
            sha.push(sha2::Sha256::digest([i]).to_vec());
        }
        assert_eq!(least_different_pair(&sha), None);
        // 24 bytes of a shared prefix and an 8-byte counter: at most 64 bits can differ.
        let counter: Vec<Vec<u8>> = (0u64..6)
            .map(|n| [vec![7u8; 24], n.to_be_bytes().to_vec()].concat())
            .collect();
        assert!(least_different_pair(&counter).is_some());
    }

    #[test]
    fn a_shared_prefix_or_counter_byte_is_found() {
        let random = vec![vec![1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]];
        assert_eq!(constant_byte_position(&random), None);
        let with_version_byte = vec![vec![9, 2, 3], vec![9, 5, 6], vec![9, 8, 1]];
        assert_eq!(constant_byte_position(&with_version_byte), Some(0));
        let with_zero_tail = vec![vec![1, 2, 0], vec![4, 5, 0]];
        assert_eq!(constant_byte_position(&with_zero_tail), Some(2));
        assert_eq!(constant_byte_position(&[vec![1]]), None);
    }
}
