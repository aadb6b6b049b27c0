//! §1 and §3: what browsers rely on: the refresh cookie's attributes, the CSRF origin check and
//! `Cache-Control: no-store`.

use super::refresh::{REFRESH_401_CODES, expect_refresh_rejected};
use crate::ensure;
use crate::http::{Reply, Req};
use crate::probe::{Channel, Outcome, Probe, Stop, expect_problem, fail};

pub(crate) fn set_cookie_violations(
    probe: &Probe,
    reply: &Reply,
    expires_in: i64,
    what: &str,
) -> Outcome {
    let config = probe.config()?;
    let name = &config.refresh_cookie.name;
    let cookie = reply
        .set_cookie(name)
        .ok_or_else(|| fail(format!("{what}: no Set-Cookie for {name}")))?;
    let problems = cookie.set_violations(&config.refresh_cookie.path, Some(expires_in));
    ensure!(
        problems.is_empty(),
        "{what}: Set-Cookie {:?}: {}",
        reply.header_values("set-cookie").collect::<Vec<_>>(),
        problems.join("; ")
    );
    Ok(())
}

fn clear_cookie_violations(probe: &Probe, reply: &Reply, what: &str) -> Outcome {
    let config = probe.config()?;
    let name = &config.refresh_cookie.name;
    let cookie = reply
        .set_cookie(name)
        .ok_or_else(|| fail(format!("{what}: no Set-Cookie clearing {name}")))?;
    let problems = cookie.clear_violations(&config.refresh_cookie.path);
    ensure!(
        problems.is_empty(),
        "{what}: Set-Cookie {:?}: {}",
        reply.header_values("set-cookie").collect::<Vec<_>>(),
        problems.join("; ")
    );
    Ok(())
}

pub async fn cookie_set(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let login = probe.login(&user, Channel::Cookie).await?;
    set_cookie_violations(
        &probe,
        &login.reply,
        login.refresh_expires_in,
        "the login's cookie",
    )?;
    let refreshed = probe.refresh(&login.refresh_token, Channel::Cookie).await?;
    set_cookie_violations(
        &probe,
        &refreshed.reply,
        refreshed.refresh_expires_in,
        "the refresh's cookie",
    )?;
    let name = &probe.config()?.refresh_cookie.name;
    ensure!(
        !name.starts_with("__Host-") || probe.config()?.refresh_cookie.path == "/",
        "a __Host- cookie needs Path=/, which the contract forbids: use __Secure-"
    );
    Ok(())
}

pub async fn cookie_clear(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let login = probe.login(&user, Channel::Cookie).await?;
    let logout = probe
        .send(
            Req::post("/auth/logout")
                .cookie(&probe.cookie_name()?, &login.refresh_token)
                .expect("204"),
        )
        .await?;
    ensure!(
        logout.status == 204,
        "logout: expected 204, got {}",
        logout.summary()
    );
    clear_cookie_violations(&probe, &logout, "the logout's cookie")?;
    let failed = expect_refresh_rejected(
        &probe,
        &login.refresh_token,
        Channel::Cookie,
        REFRESH_401_CODES,
        "a cookie refresh after logout",
    )
    .await?;
    clear_cookie_violations(&probe, &failed, "the failed refresh's cookie")
}

pub async fn csrf_origin(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let name = probe.cookie_name()?;
    let login = probe.login(&user, Channel::Cookie).await?;
    for origin in [
        "https://evil.example",
        "null",
        "http://127.0.0.1.evil.example",
    ] {
        let reply = probe
            .send(
                Req::post("/auth/refresh")
                    .cookie(&name, &login.refresh_token)
                    .header("Origin", origin)
                    .expect("403 origin_not_allowed"),
            )
            .await?;
        if reply.status == 200 {
            return Err(fail(format!(
                "a cookie refresh with Origin: {origin} SUCCEEDED; it must get 403 origin_not_allowed"
            )));
        }
        expect_problem(
            &reply,
            403,
            &["origin_not_allowed"],
            &format!("a cookie refresh with Origin: {origin}"),
        )?;
        let reply = probe
            .send(
                Req::post("/auth/logout")
                    .cookie(&name, &login.refresh_token)
                    .header("Origin", origin)
                    .expect("403 origin_not_allowed"),
            )
            .await?;
        expect_problem(
            &reply,
            403,
            &["origin_not_allowed"],
            &format!("a cookie logout with Origin: {origin}"),
        )?;
    }
    // Nothing changed: the cookie still refreshes (without Origin, as a non-browser client).
    probe
        .refresh(&login.refresh_token, Channel::Cookie)
        .await
        .map_err(|stop| match stop {
            Stop::Fail(f) => fail(format!(
                "after the refused cross-origin requests the cookie no longer works: {}",
                f.message
            )),
            other => other,
        })?;
    Ok(())
}

pub async fn cache_control_no_store(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    for channel in [Channel::Cookie, Channel::Body] {
        let login = probe.login(&user, channel).await?;
        let refreshed = probe.refresh(&login.refresh_token, channel).await?;
        for (what, reply) in [("login", &login.reply), ("refresh", &refreshed.reply)] {
            let value = reply.header("cache-control").unwrap_or("");
            ensure!(
                value
                    .split(',')
                    .any(|d| d.trim().eq_ignore_ascii_case("no-store")),
                "the {} {what} response carries tokens but Cache-Control is {value:?}, expected no-store",
                channel.name()
            );
        }
    }
    Ok(())
}
