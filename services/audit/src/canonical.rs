//! The bytes a link of the audit chain hashes, and the link hash itself. Pure: the chainer and
//! `verify` compute links the same way from the same stored row.
//!
//! The canonical bytes are those of the stored row, not of a re-rendering: the event's place
//! (position, tenant, stream, version), its attributes as Postgres renders the `jsonb` (a value has
//! one rendering: keys sorted, whitespace fixed), and its data byte for byte. Each field is length
//! prefixed, so no two different rows give the same bytes.

use sha2::{Digest, Sha256};

/// What a link covers of one stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRow {
    pub position: i64,
    pub tenant: String,
    pub stream_id: String,
    pub stream_version: i64,
    /// `attributes::text`.
    pub attributes: String,
    pub data: Option<Vec<u8>>,
}

/// The hash before the first link.
pub const GENESIS: [u8; 32] = [0; 32];

/// Names the canonical form, so a future form cannot be confused with this one.
const FORM: &[u8] = b"quorum.audit.v1";

/// `SHA-256(prev ‖ canonical bytes of row)`.
pub fn link_hash(prev: &[u8], row: &StoredRow) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    field(&mut h, Some(FORM));
    field(&mut h, Some(row.position.to_string().as_bytes()));
    field(&mut h, Some(row.tenant.as_bytes()));
    field(&mut h, Some(row.stream_id.as_bytes()));
    field(&mut h, Some(row.stream_version.to_string().as_bytes()));
    field(&mut h, Some(row.attributes.as_bytes()));
    field(&mut h, row.data.as_deref());
    h.finalize().into()
}

/// A length-prefixed field; absent is `u32::MAX`, which no present field's length can be, so absent
/// data and empty data hash differently.
fn field(h: &mut Sha256, bytes: Option<&[u8]>) {
    match bytes {
        None => h.update(u32::MAX.to_be_bytes()),
        Some(b) => {
            let len = u32::try_from(b.len()).unwrap_or(u32::MAX - 1);
            h.update(len.to_be_bytes());
            h.update(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(data: Option<&[u8]>) -> StoredRow {
        StoredRow {
            position: 7,
            tenant: "acme".into(),
            stream_id: "order/1".into(),
            stream_version: 1,
            attributes: r#"{"id": "1"}"#.into(),
            data: data.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn every_field_and_the_previous_hash_count() {
        let base = link_hash(&GENESIS, &row(Some(b"x")));
        assert_eq!(base, link_hash(&GENESIS, &row(Some(b"x"))));
        assert_ne!(base, link_hash(&[1; 32], &row(Some(b"x"))));
        assert_ne!(base, link_hash(&GENESIS, &row(Some(b"y"))));
        assert_ne!(
            link_hash(&GENESIS, &row(None)),
            link_hash(&GENESIS, &row(Some(b"")))
        );
        let mut moved = row(Some(b"x"));
        moved.position = 8;
        assert_ne!(base, link_hash(&GENESIS, &moved));
        let mut other = row(Some(b"x"));
        other.tenant = "acm".into();
        other.stream_id = "eorder/1".into();
        assert_ne!(base, link_hash(&GENESIS, &other), "fields cannot shift");
    }
}
