//! The state-machine property: random sequences of a user's session operations run against the
//! instance, every status predicted by the reference model (`model.rs`).

use std::fmt;

use futures::future::join_all;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::ensure;
use crate::http::{Reply, Req, now};
use crate::jwt::Jws;
use crate::model::{
    AccessToken, Model, ModelConfig, RefreshOutcome, RefreshToken, Statuses, Window,
};
use crate::probe::{Channel, Outcome, Probe, Stop, User, fail};

/// Which of a family's refresh tokens to present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TokenPick {
    Newest,
    /// An older one (index counted from the oldest, modulo the number of older tokens).
    Older(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WaitFor {
    AccessTtl,
    Grace,
    RefreshTtl,
}

/// One operation. Indices pick among what exists at run time (modulo its count), so every
/// sequence stays meaningful while proptest shrinks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    Login(Channel),
    Refresh {
        family: u8,
        token: TokenPick,
    },
    ConcurrentRefresh {
        family: u8,
        token: TokenPick,
        requests: u8,
    },
    Logout {
        family: u8,
        token: TokenPick,
    },
    RevokeOne {
        access: u8,
        family: u8,
    },
    RevokeAll {
        access: u8,
    },
    Me {
        access: u8,
    },
    ListSessions {
        access: u8,
    },
    Wait(WaitFor),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

pub fn op_strategy() -> impl Strategy<Value = Op> {
    let channel = prop_oneof![Just(Channel::Cookie), Just(Channel::Body)];
    let pick =
        prop_oneof![1 => Just(TokenPick::Newest), 1 => any::<u8>().prop_map(TokenPick::Older)];
    prop_oneof![
        3 => channel.prop_map(Op::Login),
        8 => (any::<u8>(), pick.clone()).prop_map(|(family, token)| Op::Refresh { family, token }),
        2 => (any::<u8>(), pick.clone(), 2u8..=4).prop_map(|(family, token, requests)| Op::ConcurrentRefresh { family, token, requests }),
        2 => (any::<u8>(), pick).prop_map(|(family, token)| Op::Logout { family, token }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(access, family)| Op::RevokeOne { access, family }),
        1 => any::<u8>().prop_map(|access| Op::RevokeAll { access }),
        3 => any::<u8>().prop_map(|access| Op::Me { access }),
        2 => any::<u8>().prop_map(|access| Op::ListSessions { access }),
        1 => prop_oneof![Just(WaitFor::AccessTtl), Just(WaitFor::Grace), Just(WaitFor::RefreshTtl)].prop_map(Op::Wait),
    ]
}

pub fn sequence_strategy() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op_strategy(), 1..=16)
}

/// The most a single case sleeps in total: longer waits are skipped.
const MAX_WAIT_PER_CASE: f64 = 9.0;
/// The longest single wait the machine takes.
const MAX_SINGLE_WAIT: f64 = 8.0;

fn window(reply: &Reply) -> Window {
    Window {
        sent: reply.sent_at,
        received: reply.received_at,
    }
}

fn show(allowed: &Statuses) -> String {
    allowed
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

/// One case: a fresh start for `user`, then the operations in order.
pub struct Case<'a> {
    probe: &'a Probe,
    user: &'a User,
    model: Model,
    waited: f64,
    step: usize,
    cookie_name: String,
    access_ttl: f64,
    refresh_ttl: f64,
}

impl<'a> Case<'a> {
    /// Logs in once and revokes every session of the user, so the case starts from a known
    /// state: no live session and one valid access token (whose session is revoked).
    pub async fn start(probe: &'a Probe, user: &'a User) -> Result<Case<'a>, Stop> {
        let config = probe.config()?;
        let model = Model::new(ModelConfig {
            grace: config.refresh_reuse_grace as f64,
            leeway: config.access_token_leeway as f64,
            margin: 1.0,
        });
        let mut case = Case {
            probe,
            user,
            model,
            waited: 0.0,
            step: 0,
            cookie_name: config.refresh_cookie.name.clone(),
            access_ttl: config.access_token_ttl as f64,
            refresh_ttl: config.refresh_token_ttl as f64,
        };
        case.login(Channel::Body).await?;
        let reply = probe
            .send(
                Req::delete("/auth/sessions")
                    .bearer(&case.model.access_tokens[0].value)
                    .expect("204 (set-up: revoke all)"),
            )
            .await?;
        ensure!(
            reply.status == 204,
            "set-up: DELETE /auth/sessions with a fresh access token: expected 204, got {}",
            reply.summary()
        );
        case.model.apply_revoke_all(204);
        Ok(case)
    }

    fn mismatch(&self, op: &Op, expected: &str, reply: &Reply, extra: &str) -> Stop {
        fail(format!(
            "operation {} ({op}): expected {expected}, got {}{}{extra}",
            self.step,
            reply.summary(),
            if extra.is_empty() { "" } else { ": " }
        ))
    }

    pub async fn run(&mut self, op: Op) -> Outcome {
        self.step += 1;
        match op {
            Op::Login(channel) => self.login(channel).await,
            Op::Refresh { family, token } => self.refresh(op, family, token).await,
            Op::ConcurrentRefresh {
                family,
                token,
                requests,
            } => self.concurrent_refresh(op, family, token, requests).await,
            Op::Logout { family, token } => self.logout(op, family, token).await,
            Op::RevokeOne { access, family } => self.revoke_one(op, access, family).await,
            Op::RevokeAll { access } => self.revoke_all(op, access).await,
            Op::Me { access } => self.me(op, access).await,
            Op::ListSessions { access } => self.list_sessions(op, access).await,
            Op::Wait(what) => {
                self.wait(what).await;
                Ok(())
            }
        }
    }

    /// After the sequence, refreshes every family's newest token once, so that a family the
    /// model thinks is over (or live) is checked even when the sequence never touched it again.
    pub async fn audit(&mut self) -> Outcome {
        for family in 0..self.model.families.len().min(usize::from(u8::MAX)) {
            let index = family as u8;
            self.step += 1;
            self.refresh(
                Op::Refresh {
                    family: index,
                    token: TokenPick::Newest,
                },
                index,
                TokenPick::Newest,
            )
            .await
            .map_err(|stop| match stop {
                Stop::Fail(mut f) => {
                    f.message = format!("final audit: {}", f.message);
                    Stop::Fail(f)
                }
                other => other,
            })?;
        }
        Ok(())
    }

    fn pick_family(&self, index: u8) -> Option<usize> {
        (!self.model.families.is_empty()).then(|| index as usize % self.model.families.len())
    }

    fn pick_token(&self, family: usize, pick: TokenPick) -> usize {
        let count = self.model.families[family].tokens.len();
        match pick {
            TokenPick::Older(i) if count > 1 => i as usize % (count - 1),
            _ => count - 1,
        }
    }

    fn pick_access(&self, index: u8) -> usize {
        index as usize % self.model.access_tokens.len()
    }

    /// Records the access token of a 200 token response; returns its `sid`.
    fn take_access_token(&mut self, body: &Value) -> Result<String, Stop> {
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("a token response has no access_token"))?;
        let jws =
            Jws::parse(token).map_err(|e| fail(format!("the access token is not a JWS: {e}")))?;
        let sid = jws
            .claim_str("sid")
            .ok_or_else(|| fail("the access token has no sid claim"))?
            .to_string();
        let exp = jws
            .claim_i64("exp")
            .ok_or_else(|| fail("the access token has no numeric exp claim"))?;
        self.model.add_access_token(AccessToken {
            value: token.to_string(),
            exp: exp as f64,
            sid: sid.clone(),
        });
        Ok(sid)
    }

    /// The refresh token of a 200 on `channel`, checking it came back on the channel it went in on.
    fn delivered_refresh_token(&self, reply: &Reply, channel: Channel) -> Result<String, String> {
        let body = reply.json().unwrap_or(Value::Null);
        let in_body = body
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_string);
        let in_cookie = reply
            .set_cookie(&self.cookie_name)
            .filter(|c| !c.is_clearing())
            .map(|c| c.value);
        match channel {
            Channel::Body => in_body.ok_or_else(|| {
                "the token came in the body but the response has no refresh_token in the body"
                    .into()
            }),
            Channel::Cookie => {
                if in_body.is_some() {
                    return Err("the token came in the cookie but the response has a refresh_token in the body".into());
                }
                in_cookie.ok_or_else(|| {
                    format!(
                        "the token came in the cookie but the response sets no {} cookie",
                        self.cookie_name
                    )
                })
            }
        }
    }

    async fn login(&mut self, channel: Channel) -> Outcome {
        let mut body = json!({"email": self.user.email, "password": self.user.password});
        if channel == Channel::Body {
            body["refresh_token_in_body"] = json!(true);
        }
        let reply = self
            .probe
            .send(Req::post("/auth/login").json(&body).expect("200"))
            .await?;
        let op = Op::Login(channel);
        if reply.status != 200 {
            return Err(self.mismatch(&op, "200", &reply, ""));
        }
        let token = self
            .delivered_refresh_token(&reply, channel)
            .map_err(|e| self.mismatch(&op, "200", &reply, &e))?;
        if self.model.seen_refresh_token(&token) {
            return Err(self.mismatch(
                &op,
                "a new refresh token",
                &reply,
                "the login returned a refresh token seen before",
            ));
        }
        let sid = self.take_access_token(&reply.json().unwrap_or(Value::Null))?;
        if self.model.families.iter().any(|f| f.sid == sid) {
            return Err(self.mismatch(
                &op,
                "a new session id",
                &reply,
                &format!("sid {sid} was already used"),
            ));
        }
        let expires_in = reply
            .json()
            .and_then(|b| b.get("refresh_expires_in").and_then(Value::as_f64))
            .unwrap_or(self.refresh_ttl);
        self.model.add_family(
            &sid,
            channel,
            RefreshToken {
                value: token,
                issued: window(&reply),
                expires_in,
            },
        );
        Ok(())
    }

    fn refresh_req(&self, family: usize, token: usize) -> Req {
        let f = &self.model.families[family];
        let value = &f.tokens[token].value;
        match f.channel {
            Channel::Body => Req::post("/auth/refresh").json(&json!({"refresh_token": value})),
            Channel::Cookie => Req::post("/auth/refresh").cookie(&self.cookie_name, value),
        }
    }

    fn describe(outcomes: &std::collections::BTreeSet<RefreshOutcome>) -> String {
        outcomes
            .iter()
            .map(|o| match o {
                RefreshOutcome::Rotated => "200 with a new refresh token",
                RefreshOutcome::SameSuccessor => "200 with the same successor token (grace)",
                RefreshOutcome::Rejected => "401",
            })
            .collect::<Vec<_>>()
            .join(" or ")
    }

    /// Classifies a refresh response and checks it against the allowed outcomes; updates the model.
    fn observe_refresh(
        &mut self,
        op: &Op,
        family: usize,
        reply: &Reply,
        allowed: &std::collections::BTreeSet<RefreshOutcome>,
    ) -> Result<RefreshOutcome, Stop> {
        let expected = Self::describe(allowed);
        let channel = self.model.families[family].channel;
        let observed = match reply.status {
            200 => {
                let token = self
                    .delivered_refresh_token(reply, channel)
                    .map_err(|e| self.mismatch(op, &expected, reply, &e))?;
                let f = &self.model.families[family];
                if token == f.tokens.last().map(|t| t.value.clone()).unwrap_or_default() {
                    (RefreshOutcome::SameSuccessor, None)
                } else if self.model.seen_refresh_token(&token) {
                    return Err(self.mismatch(
                        op,
                        &expected,
                        reply,
                        "the refresh returned an older refresh token again",
                    ));
                } else {
                    let expires_in = reply
                        .json()
                        .and_then(|b| b.get("refresh_expires_in").and_then(Value::as_f64))
                        .unwrap_or(self.refresh_ttl);
                    (
                        RefreshOutcome::Rotated,
                        Some(RefreshToken {
                            value: token,
                            issued: window(reply),
                            expires_in,
                        }),
                    )
                }
            }
            401 => {
                if channel == Channel::Cookie
                    && !reply
                        .set_cookie(&self.cookie_name)
                        .is_some_and(|c| c.is_clearing())
                {
                    return Err(self.mismatch(
                        op,
                        &expected,
                        reply,
                        "a 401 for a cookie refresh must clear the cookie (Max-Age=0)",
                    ));
                }
                (RefreshOutcome::Rejected, None)
            }
            _ => return Err(self.mismatch(op, &expected, reply, "")),
        };
        if !allowed.contains(&observed.0) {
            let got = Self::describe(&[observed.0].into_iter().collect());
            return Err(self.mismatch(op, &expected, reply, &format!("that is: {got}")));
        }
        if observed.0 != RefreshOutcome::Rejected {
            let sid = self.take_access_token(&reply.json().unwrap_or(Value::Null))?;
            let family_sid = self.model.families[family].sid.clone();
            if sid != family_sid {
                return Err(self.mismatch(
                    op,
                    &expected,
                    reply,
                    &format!(
                        "the new access token has sid {sid}, expected the family's {family_sid}"
                    ),
                ));
            }
        }
        self.model.apply_refresh(family, observed.0, observed.1);
        Ok(observed.0)
    }

    async fn refresh(&mut self, op: Op, family: u8, pick: TokenPick) -> Outcome {
        let Some(family) = self.pick_family(family) else {
            return Ok(());
        };
        let token = self.pick_token(family, pick);
        let planned = self.model.refresh_outcomes(
            family,
            token,
            Window {
                sent: now(),
                received: now() + 0.5,
            },
        );
        let reply = self
            .probe
            .send(
                self.refresh_req(family, token)
                    .expect(Self::describe(&planned)),
            )
            .await?;
        let allowed = self.model.refresh_outcomes(family, token, window(&reply));
        self.observe_refresh(&op, family, &reply, &allowed)
            .map(|_| ())
    }

    async fn concurrent_refresh(
        &mut self,
        op: Op,
        family: u8,
        pick: TokenPick,
        requests: u8,
    ) -> Outcome {
        let Some(family) = self.pick_family(family) else {
            return Ok(());
        };
        let token = self.pick_token(family, pick);
        let req = self.refresh_req(family, token);
        let replies = join_all((0..requests).map(|_| self.probe.send(req.clone()))).await;
        let replies: Vec<Reply> = replies.into_iter().collect::<Result<_, _>>()?;
        let span = Window {
            sent: replies
                .iter()
                .map(|r| r.sent_at)
                .fold(f64::INFINITY, f64::min),
            received: replies.iter().map(|r| r.received_at).fold(0.0, f64::max),
        };
        let allowed = self.model.refresh_outcomes(family, token, span);
        let successes: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
        let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        let strict = self.model.config.grace <= 0.0;
        let channel = self.model.families[family].channel;
        let describe = |what: &str| {
            fail(format!(
                "operation {} ({op}): {requests} concurrent refreshes with one token: {what}; statuses {statuses:?}",
                self.step
            ))
        };
        if let Some(bad) = replies.iter().find(|r| r.status != 200 && r.status != 401) {
            return Err(describe(&format!(
                "expected only 200 or 401, got {}",
                bad.summary()
            )));
        }
        if successes.is_empty() {
            if !allowed.contains(&RefreshOutcome::Rejected) {
                return Err(describe(&format!(
                    "expected {}, but every request got 401",
                    Self::describe(&allowed)
                )));
            }
            self.model
                .apply_refresh(family, RefreshOutcome::Rejected, None);
            return Ok(());
        }
        let tokens: Vec<String> = successes
            .iter()
            .map(|r| self.delivered_refresh_token(r, channel))
            .collect::<Result<_, _>>()
            .map_err(|e| describe(&e))?;
        if strict {
            if successes.len() != 1 {
                return Err(describe(
                    "with refresh_reuse_grace 0 exactly one may succeed",
                ));
            }
            let winner = successes[0];
            let allowed_first = self.model.refresh_outcomes(family, token, window(winner));
            self.observe_refresh(&op, family, winner, &allowed_first)?;
            // Every loser presented a token that had been rotated: reuse, the family is over.
            self.model
                .apply_refresh(family, RefreshOutcome::Rejected, None);
            return Ok(());
        }
        if successes.len() != replies.len() && !allowed.contains(&RefreshOutcome::Rejected) {
            return Err(describe(
                "within the reuse grace every concurrent refresh must get 200",
            ));
        }
        if tokens.iter().any(|t| *t != tokens[0]) {
            return Err(describe(
                "within the reuse grace every concurrent refresh must get the SAME new refresh token (the family forked)",
            ));
        }
        // The first success rotates (or repeats the successor); the others repeat it.
        let first = successes[0];
        let allowed_first = self.model.refresh_outcomes(family, token, window(first));
        self.observe_refresh(&op, family, first, &allowed_first)?;
        for r in &successes[1..] {
            self.take_access_token(&r.json().unwrap_or(Value::Null))?;
        }
        if successes.len() != replies.len() {
            self.model
                .apply_refresh(family, RefreshOutcome::Rejected, None);
        }
        Ok(())
    }

    async fn logout(&mut self, op: Op, family: u8, pick: TokenPick) -> Outcome {
        let Some(family) = self.pick_family(family) else {
            return Ok(());
        };
        let token = self.pick_token(family, pick);
        let f = &self.model.families[family];
        let value = f.tokens[token].value.clone();
        let channel = f.channel;
        let req = match channel {
            Channel::Body => Req::post("/auth/logout").json(&json!({"refresh_token": value})),
            Channel::Cookie => Req::post("/auth/logout").cookie(&self.cookie_name, &value),
        };
        let reply = self.probe.send(req.expect("204")).await?;
        let allowed = self.model.logout(family);
        if !allowed.contains(&reply.status) {
            return Err(self.mismatch(&op, &show(&allowed), &reply, ""));
        }
        if channel == Channel::Cookie
            && !reply
                .set_cookie(&self.cookie_name)
                .is_some_and(|c| c.is_clearing())
        {
            return Err(self.mismatch(
                &op,
                "204 that clears the cookie",
                &reply,
                "the logout does not clear the cookie (Max-Age=0)",
            ));
        }
        Ok(())
    }

    async fn revoke_one(&mut self, op: Op, access: u8, family: u8) -> Outcome {
        let Some(family) = self.pick_family(family) else {
            return Ok(());
        };
        let access = self.pick_access(access);
        let sid = self.model.families[family].sid.clone();
        let planned = self.model.revoke_one_statuses(
            access,
            family,
            Window {
                sent: now(),
                received: now() + 0.5,
            },
        );
        let req = Req::delete(&format!("/auth/sessions/{sid}"))
            .bearer(&self.model.access_tokens[access].value);
        let reply = self.probe.send(req.expect(show(&planned))).await?;
        let allowed = self
            .model
            .revoke_one_statuses(access, family, window(&reply));
        if !allowed.contains(&reply.status) {
            return Err(self.mismatch(&op, &show(&allowed), &reply, ""));
        }
        self.model.apply_revoke_one(family, reply.status);
        Ok(())
    }

    async fn revoke_all(&mut self, op: Op, access: u8) -> Outcome {
        let access = self.pick_access(access);
        let planned = self.model.revoke_all_statuses(
            access,
            Window {
                sent: now(),
                received: now() + 0.5,
            },
        );
        let req = Req::delete("/auth/sessions").bearer(&self.model.access_tokens[access].value);
        let reply = self.probe.send(req.expect(show(&planned))).await?;
        let allowed = self.model.revoke_all_statuses(access, window(&reply));
        if !allowed.contains(&reply.status) {
            return Err(self.mismatch(&op, &show(&allowed), &reply, ""));
        }
        self.model.apply_revoke_all(reply.status);
        Ok(())
    }

    async fn me(&mut self, op: Op, access: u8) -> Outcome {
        let access = self.pick_access(access);
        let planned = self.model.me_statuses(
            access,
            Window {
                sent: now(),
                received: now() + 0.5,
            },
        );
        let reply = self
            .probe
            .send(
                Req::get("/auth/me")
                    .bearer(&self.model.access_tokens[access].value)
                    .expect(show(&planned)),
            )
            .await?;
        let allowed = self.model.me_statuses(access, window(&reply));
        if !allowed.contains(&reply.status) {
            return Err(self.mismatch(
                &op,
                &show(&allowed),
                &reply,
                "access tokens stay valid until exp, also after logout (§4)",
            ));
        }
        if reply.status == 200 {
            let email = reply.str_field("email").unwrap_or_default();
            if !email.eq_ignore_ascii_case(&self.user.email) {
                return Err(self.mismatch(
                    &op,
                    "200 with the user's email",
                    &reply,
                    "a different email",
                ));
            }
        }
        Ok(())
    }

    async fn list_sessions(&mut self, op: Op, access: u8) -> Outcome {
        let access = self.pick_access(access);
        let planned = self.model.list_statuses(
            access,
            Window {
                sent: now(),
                received: now() + 0.5,
            },
        );
        let reply = self
            .probe
            .send(
                Req::get("/auth/sessions")
                    .bearer(&self.model.access_tokens[access].value)
                    .expect(show(&planned)),
            )
            .await?;
        let allowed = self.model.list_statuses(access, window(&reply));
        if !allowed.contains(&reply.status) {
            return Err(self.mismatch(&op, &show(&allowed), &reply, ""));
        }
        if reply.status == 200 {
            let body = reply.json().unwrap_or(Value::Null);
            let Some(first_page) = body.as_array() else {
                return Err(self.mismatch(
                    &op,
                    "200 with a JSON array of sessions",
                    &reply,
                    "not an array",
                ));
            };
            // A paged list names its next page in `Link: <…>; rel="next"`.
            let mut items = first_page.clone();
            let mut next = reply.next_link_from("/auth/sessions");
            let mut pages = 1;
            while let Some(path) = next.take() {
                pages += 1;
                let page = self
                    .probe
                    .send(
                        Req::get(&path)
                            .bearer(&self.model.access_tokens[access].value)
                            .expect("200 (next page)"),
                    )
                    .await?;
                let Some(more) = page.json().and_then(|b| b.as_array().cloned()) else {
                    return Err(self.mismatch(
                        &op,
                        "200 with a JSON array of sessions (next page)",
                        &page,
                        "not an array",
                    ));
                };
                items.extend(more);
                next = page.next_link_from(&path).filter(|_| pages < 50);
            }
            let listed: Vec<(String, bool)> = items
                .iter()
                .map(|s| {
                    (
                        s.get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        s.get("current").and_then(Value::as_bool).unwrap_or(false),
                    )
                })
                .collect();
            self.model
                .check_listing(access, window(&reply), &listed)
                .map_err(|e| self.mismatch(&op, "the model's live sessions", &reply, &e))?;
        }
        Ok(())
    }

    async fn wait(&mut self, what: WaitFor) {
        let config = self.model.config;
        let seconds = match what {
            WaitFor::AccessTtl => self.access_ttl + config.leeway + 1.2,
            WaitFor::Grace if config.grace > 0.0 => config.grace + 1.2,
            WaitFor::Grace => return,
            WaitFor::RefreshTtl => self.refresh_ttl + 1.2,
        };
        if seconds > MAX_SINGLE_WAIT || self.waited + seconds > MAX_WAIT_PER_CASE {
            return;
        }
        self.waited += seconds;
        self.probe
            .recorder
            .push(crate::http::Exchange::wait(seconds));
        tokio::time::sleep(std::time::Duration::from_secs_f64(seconds)).await;
    }
}

/// The property: every random sequence behaves as the model predicts.
async fn run_sequence(probe: &Probe, user: &User, ops: &[Op]) -> Outcome {
    let mut case = Case::start(probe, user).await?;
    for op in ops {
        case.run(*op).await?;
    }
    case.audit().await
}

/// Parses a `--replay` file: a JSON array of operation sequences.
pub fn parse_regressions(text: &str) -> Result<Vec<Vec<Op>>, String> {
    serde_json::from_str(text).map_err(|e| format!("not a JSON array of operation sequences: {e}"))
}

pub async fn sessions_follow_the_model(probe: Probe) -> Outcome {
    probe.config()?;
    let user = probe.user().await?;
    for (index, ops) in probe.env.regressions.iter().enumerate() {
        let case_probe = probe.fresh();
        if let Err(Stop::Fail(failure)) = run_sequence(&case_probe, &user, ops).await {
            return Err(Stop::Fail(crate::probe::Failure {
                message: format!(
                    "replayed sequence {} of the --replay file: {}",
                    index + 1,
                    failure.message
                ),
                steps: Some(failure.steps.unwrap_or_else(|| case_probe.recorder.steps())),
            }));
        }
    }
    let cases = probe.env.cases;
    let user_for_cases = user.clone();
    crate::property::check(
        &probe,
        "model/sessions",
        cases,
        sequence_strategy,
        move |case_probe, ops: Vec<Op>| {
            let user = user_for_cases.clone();
            async move {
                run_sequence(&case_probe, &user, &ops)
                    .await
                    .map_err(|stop| match stop {
                        Stop::Fail(mut failure) => {
                            let json = serde_json::to_string(&ops).unwrap_or_default();
                            failure.message = format!(
                                "{}\nto keep it as a regression, add to a --replay file: {json}",
                                failure.message
                            );
                            Stop::Fail(failure)
                        }
                        other => other,
                    })
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    #[test]
    fn the_kept_regressions_parse() {
        let sequences =
            parse_regressions(include_str!("../regressions/model-sessions.json")).unwrap();
        assert!(sequences.len() >= 5);
        assert!(sequences.iter().all(|ops| !ops.is_empty()));
    }

    #[test]
    fn sequences_roundtrip_through_json() {
        let ops = vec![
            Op::Login(Channel::Cookie),
            Op::Refresh {
                family: 1,
                token: TokenPick::Older(3),
            },
            Op::ConcurrentRefresh {
                family: 0,
                token: TokenPick::Newest,
                requests: 3,
            },
            Op::Wait(WaitFor::Grace),
        ];
        let json = serde_json::to_string(&ops).unwrap();
        assert_eq!(parse_regressions(&format!("[{json}]")).unwrap(), vec![ops]);
        assert!(parse_regressions("[[{\"Fly\": 1}]]").is_err());
    }

    #[test]
    fn the_strategy_generates_every_kind_of_operation() {
        let mut runner = TestRunner::deterministic();
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let op = op_strategy().new_tree(&mut runner).unwrap().current();
            kinds.insert(
                format!("{op:?}")
                    .split([' ', '('])
                    .next()
                    .unwrap()
                    .to_string(),
            );
        }
        for kind in [
            "Login",
            "Refresh",
            "ConcurrentRefresh",
            "Logout",
            "RevokeOne",
            "RevokeAll",
            "Me",
            "ListSessions",
            "Wait",
        ] {
            assert!(kinds.contains(kind), "{kind} never generated: {kinds:?}");
        }
    }
}
