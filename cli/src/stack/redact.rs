//! Secrets out of URLs and connection strings before they are printed.

/// Values of these keys are secrets, in a URL's query (`?password=`, `?token=`) as in a key=value
/// connection string (`password=… sslpassword=…`); matched on the lowercased key as a substring.
const SECRET_KEYS: [&str; 6] = ["pass", "pwd", "token", "secret", "key", "auth"];

/// What stands in for a secret.
const REDACTED: &str = "redacted";

/// A URL or connection string with every secret replaced, for printing: the password of a URL
/// (`postgres://`, `postgresql://`, `nats://`, each of a comma-separated server list), the user of a
/// NATS URL (a token: `nats://<token>@host`), secrets in a query string, and secrets of a
/// key=value connection string (`host=db password=…`). What cannot be parsed loses everything
/// between `://` and `@`, and its query.
pub fn redact(url: &str) -> String {
    if url.contains("://") {
        url.split(',').map(redact_url).collect::<Vec<_>>().join(",")
    } else if url.contains('=') {
        redact_key_values(url)
    } else {
        url.to_owned()
    }
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEYS.iter().any(|s| key.contains(s))
}

fn redact_url(part: &str) -> String {
    let Ok(mut u) = url::Url::parse(part.trim()) else {
        return redact_unparsed(part);
    };
    if u.password().is_some() {
        let _ = u.set_password(Some(REDACTED));
    } else if !u.username().is_empty() && matches!(u.scheme(), "nats" | "tls" | "ws" | "wss") {
        // NATS reads a lone user as a token.
        let _ = u.set_username(REDACTED);
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_key(&k) {
                    REDACTED.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let text = u.to_string();
    // A lone comma-separated part keeps its leading space.
    let lead = &part[..part.len() - part.trim_start().len()];
    format!("{lead}{text}")
}

/// A URL the parser refused: keep the scheme and the host, drop the user information and query.
fn redact_unparsed(part: &str) -> String {
    let Some((scheme, rest)) = part.split_once("://") else {
        return part.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = match authority.rfind('@') {
        Some(at) => format!("{REDACTED}@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    format!("{scheme}://{host}{path}")
}

/// `host=db password='a b' user=q`: values of secret keys replaced, quoting and escapes honoured.
fn redact_key_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            out.push(c);
            chars.next();
            continue;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        out.push_str(&key);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            out.push(chars.next().unwrap_or(' '));
        }
        if chars.peek() != Some(&'=') {
            continue;
        }
        out.push('=');
        chars.next();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            out.push(chars.next().unwrap_or(' '));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            value.push('\'');
            chars.next();
            while let Some(c) = chars.next() {
                value.push(c);
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => break,
                    _ => {}
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
                if c == '\\' {
                    value.extend(chars.next());
                }
            }
        }
        if is_secret_key(&key) {
            out.push_str(REDACTED);
        } else {
            out.push_str(&value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_covers_every_url_and_connection_string_form() {
        let cases = [
            (
                "postgres://quorum:hunter2@db:5432/quorum",
                "postgres://quorum:redacted@db:5432/quorum",
            ),
            (
                "postgresql://quorum:hunter2@db/quorum?sslmode=require",
                "postgresql://quorum:redacted@db/quorum?sslmode=require",
            ),
            (
                "postgres://db/quorum?user=q&password=hunter2&sslpassword=hunter2",
                "postgres://db/quorum?user=q&password=redacted&sslpassword=redacted",
            ),
            (
                "nats://alice:hunter2@bus:4222",
                "nats://alice:redacted@bus:4222",
            ),
            ("nats://hunter2@bus:4222", "nats://redacted@bus:4222"),
            (
                "nats://a:hunter2@n1:4222,nats://b:hunter2@n2:4222",
                "nats://a:redacted@n1:4222,nats://b:redacted@n2:4222",
            ),
            (
                "http://svc/x?token=hunter2&page=2",
                "http://svc/x?token=redacted&page=2",
            ),
            (
                "host=db user=q password=hunter2 dbname=quorum",
                "host=db user=q password=redacted dbname=quorum",
            ),
            (
                "host=db password = 'hunter2 \\' x' dbname=quorum",
                "host=db password = redacted dbname=quorum",
            ),
            ("postgres://q@db/quorum", "postgres://q@db/quorum"),
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ];
        for (given, shown) in cases {
            assert_eq!(redact(given), shown, "{given}");
            assert!(!redact(given).contains("hunter2"), "{given}");
        }
    }

    #[test]
    fn an_unparsable_url_loses_its_user_information_and_query() {
        let shown = redact("postgres://q:hunter2@db:99999/quorum?password=hunter2");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.starts_with("postgres://redacted@db:99999/quorum"),
            "{shown}"
        );
    }
}
