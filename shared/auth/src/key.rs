//! The key's shape: `qk_<prefix>_<secret>`. The prefix finds the row and may be logged; the secret
//! never is.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Hex characters of the prefix (6 random bytes).
const PREFIX_LEN: usize = 12;

/// A key as a caller presented it, split into its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    pub prefix: &'a str,
    whole: &'a str,
}

impl<'a> PresentedKey<'a> {
    /// Splits `qk_<prefix>_<secret>`; `None` for anything else.
    pub fn parse(whole: &'a str) -> Option<Self> {
        let rest = whole.strip_prefix("qk_")?;
        let (prefix, secret) = rest.split_once('_')?;
        let ok = prefix.len() == PREFIX_LEN
            && prefix
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            && (32..=64).contains(&secret.len())
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then_some(Self { prefix, whole })
    }

    /// Whether this key hashes to `stored`, compared in constant time.
    pub fn matches(&self, stored: &[u8]) -> bool {
        hash(self.whole).ct_eq(stored).into()
    }
}

pub(crate) fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// A new random key: (prefix, whole key).
pub(crate) fn generate() -> Result<(String, String), getrandom::Error> {
    let mut prefix = [0u8; PREFIX_LEN / 2];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut prefix)?;
    getrandom::fill(&mut secret)?;
    let prefix: String = prefix.iter().map(|b| format!("{b:02x}")).collect();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let whole = format!("qk_{prefix}_{secret}");
    Ok((prefix, whole))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_match_their_hash_only() {
        let (prefix, key) = generate().unwrap();
        let presented = PresentedKey::parse(&key).unwrap();
        assert_eq!(presented.prefix, prefix);
        assert!(presented.matches(&hash(&key)));
        let (_, other) = generate().unwrap();
        assert!(!presented.matches(&hash(&other)));
        for bad in [
            "",
            "qk_",
            "Bearer x",
            "qk_short_secret",
            &key.replace("qk_", "pk_"),
        ] {
            assert!(PresentedKey::parse(bad).is_none(), "{bad}");
        }
    }
}
