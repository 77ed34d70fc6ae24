//! Connecting to NATS as one of the server config's users (docs/adr/0027): the user and password,
//! and the user's own inbox prefix (`_INBOX_<user>`), the only replies that user may receive.

use async_nats::{Client, ConnectError, ConnectOptions};

use crate::config::{CommonConfig, Secret};

/// Options for connecting as `user` with `password`, or as nobody when `user` is `None`.
pub fn options(user: Option<&str>, password: Option<&Secret>) -> ConnectOptions {
    let options = ConnectOptions::new();
    match user {
        Some(user) => options
            .user_and_password(
                user.to_owned(),
                password.map(|p| p.expose().to_owned()).unwrap_or_default(),
            )
            .custom_inbox_prefix(quorum_bus::access::inbox_prefix(user)),
        None => options,
    }
}

/// Connects to `url` (servers comma-separated) as `user`; without one, as the URL's own
/// `nats://user:password@host` if it names one (the client library does not read a URL's
/// credentials itself).
pub async fn connect(
    url: &str,
    user: Option<&str>,
    password: Option<&Secret>,
) -> Result<Client, ConnectError> {
    match (user, url_login(url)) {
        (None, Some((user, password))) => options(Some(&user), Some(&password)).connect(url).await,
        _ => options(user, password).connect(url).await,
    }
}

/// The user and password of the first server of `url` that has both.
fn url_login(url: &str) -> Option<(String, Secret)> {
    url.split(',').find_map(|server| {
        let parsed = url::Url::parse(server.trim()).ok()?;
        let password = parsed.password()?;
        Some((
            percent_decoded(parsed.username())?,
            Secret::new(percent_decoded(password)?),
        ))
    })
}

/// `s` with its `%XX` escapes decoded (a URL's user and password are kept escaped).
fn percent_decoded(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// Connects to `common.nats_url` as `common.nats_user` (or as the URL's user).
pub async fn connect_common(common: &CommonConfig) -> Result<Client, ConnectError> {
    connect(
        &common.nats_url,
        common.nats_user.as_deref(),
        common.nats_password.as_ref(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_login_is_read() {
        let (user, password) = url_login("nats://a:4222,nats://admin:p%40s+s@b:4222").unwrap();
        assert_eq!((user.as_str(), password.expose()), ("admin", "p@s+s"));
        assert!(url_login("nats://token@a:4222").is_none());
        assert!(url_login("nats://a:4222").is_none());
    }
}
