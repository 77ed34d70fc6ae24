//! The few JWTs of NATS's auth callout, encoded and checked the way nats-io/jwt (v2) does: a
//! header `{"typ":"JWT","alg":"ed25519-nkey"}`, the claims as JSON, both base64url without
//! padding, and an ed25519 signature by the issuer's nkey over `header.claims`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

/// A token that is not a valid, signed JWT of the kind expected.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JwtError(String);

fn bad(message: impl Into<String>) -> JwtError {
    JwtError(message.into())
}

/// Signs `claims` (completed with `iat`, `jti` and `iss`) with `issuer`.
pub fn encode(mut claims: Value, issuer: &KeyPair) -> Result<String, JwtError> {
    let object = claims
        .as_object_mut()
        .ok_or_else(|| bad("claims must be an object"))?;
    object.insert("iss".into(), issuer.public_key().into());
    object.insert("iat".into(), chrono::Utc::now().timestamp().into());
    // nats-io/jwt makes the id a hash of the claims; the server only needs it unique.
    object.insert(
        "jti".into(),
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .to_uppercase()
            .into(),
    );
    let body = serde_json::to_vec(&claims).map_err(|e| bad(e.to_string()))?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(body)
    );
    let signature = issuer
        .sign(signing_input.as_bytes())
        .map_err(|e| bad(format!("cannot sign: {e}")))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Issued {
    iss: String,
}

/// The claims of `token`, once its signature is checked against its own issuer, which must be a
/// key of the kind `issuer_is` accepts (a server's `N…` for an authorization request).
pub fn decode<T: DeserializeOwned>(
    token: &str,
    issuer_is: impl Fn(&str) -> bool,
) -> Result<T, JwtError> {
    let mut parts = token.trim().split('.');
    let (Some(header), Some(body), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not a JWT: expected header.claims.signature"));
    };
    let unb64 = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| bad(format!("{what} is not base64url: {e}")))
    };
    let h: Header = serde_json::from_slice(&unb64(header, "header")?)
        .map_err(|e| bad(format!("header: {e}")))?;
    if h.alg != "ed25519-nkey" {
        return Err(bad(format!("algorithm {:?} is not ed25519-nkey", h.alg)));
    }
    let claims = unb64(body, "claims")?;
    let issued: Issued =
        serde_json::from_slice(&claims).map_err(|e| bad(format!("claims: {e}")))?;
    if !issuer_is(&issued.iss) {
        return Err(bad(format!(
            "issuer {} is not of the expected kind",
            issued.iss
        )));
    }
    let key = KeyPair::from_public_key(&issued.iss).map_err(|e| bad(format!("issuer: {e}")))?;
    key.verify(
        format!("{header}.{body}").as_bytes(),
        &unb64(signature, "signature")?,
    )
    .map_err(|_| bad("the signature does not match its issuer"))?;
    serde_json::from_slice(&claims).map_err(|e| bad(format!("claims: {e}")))
}

/// A public nkey of a server (`N…`).
pub fn is_server_key(key: &str) -> bool {
    key.starts_with('N') && KeyPair::from_public_key(key).is_ok()
}

/// The user JWT the server binds a connection to: user `user_nkey` (the key the server made for
/// this connection) in `account`, named `name`, with `publish`/`subscribe` allowed, until
/// `expires` (seconds since the epoch).
pub fn user_claims(
    user_nkey: &str,
    account: &str,
    name: &str,
    publish: &[String],
    subscribe: &[String],
    expires: i64,
) -> Value {
    json!({
        "sub": user_nkey,
        // Without operators, the audience names the account the user is placed in.
        "aud": account,
        "name": name,
        "exp": expires,
        "nats": {
            "pub": { "allow": publish },
            "sub": { "allow": subscribe },
            // No limit of their own: the server's max_payload and the account's apply. Written
            // out, since an absent limit reads as zero.
            "subs": -1,
            "data": -1,
            "payload": -1,
            // Clients only: no leaf node or MQTT bridge on an upstream system's key.
            "allowed_connection_types": ["STANDARD", "WEBSOCKET"],
            "type": "user",
            "version": 2
        }
    })
}

/// The callout's answer to the server `server_id` about `user_nkey`: the user JWT, or why not.
pub fn response_claims(server_id: &str, user_nkey: &str, answer: Result<String, String>) -> Value {
    let mut nats = json!({ "type": "authorization_response", "version": 2 });
    match answer {
        Ok(jwt) => nats["jwt"] = jwt.into(),
        Err(error) => nats["error"] = error.into(),
    }
    json!({ "sub": user_nkey, "aud": server_id, "nats": nats })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_only_with_its_own_signature() {
        let issuer = KeyPair::new_account();
        let token = encode(json!({"sub": "x", "nats": {"v": 1}}), &issuer).unwrap();
        let claims: Value = decode(&token, |k| k.starts_with('A')).unwrap();
        assert_eq!(claims["iss"], issuer.public_key());
        assert_eq!(claims["nats"]["v"], 1);
        // Claims swapped under the signature: refused.
        let other = encode(json!({"sub": "y"}), &issuer).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            other.split('.').nth(1).unwrap(),
            parts[2]
        );
        assert!(decode::<Value>(&forged, |_| true).is_err());
        // An issuer of the wrong kind: refused.
        assert!(decode::<Value>(&token, is_server_key).is_err());
        assert!(decode::<Value>("a.b", |_| true).is_err());
    }
}
