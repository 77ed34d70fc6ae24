//! The NATS side: a fuzz input read as a message (a header block as an `HMSG` carries it, then the
//! payload), parsed and serialised as async-nats does.

use std::str::FromStr;

use async_nats::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use quorum_domain::Event;

/// A message as fuzz input: a header block (`NATS/1.0` … an empty line, as an `HMSG` carries it)
/// then the payload, or with no header block, the payload alone (a `MSG`). `None` when async-nats
/// would not hand the message to a consumer.
pub fn nats_message(input: &[u8]) -> Option<(Option<HeaderMap>, Bytes)> {
    if !input.starts_with(b"NATS/1.0") {
        return Some((None, Bytes::copy_from_slice(input)));
    }
    let end = input.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let headers = parse_header_block(&input[..end])?;
    Some((Some(headers), Bytes::copy_from_slice(&input[end..])))
}

/// A header block as async-nats 0.51 parses what it receives (`Connection::try_read_op`, `HMSG`).
/// `None` where it returns an error (not UTF-8, no version line, a line without `:`, an invalid
/// name). A status after `NATS/1.0` is ignored: a publisher's status line on a message in a stream
/// reaches the pull consumer as an ordinary message (seen with nats-server 2.15.1).
///
/// One departure: where a value holds a CR that is not at its end, async-nats panics
/// (`HeaderValue: From<String>` asserts), killing the client's connection task; upstream knows
/// (nats-io/nats.rs pull request 1612). Here that message is dropped instead, so the fuzzer goes on
/// to what Quorum's own code does.
pub fn parse_header_block(block: &[u8]) -> Option<HeaderMap> {
    let mut lines = std::str::from_utf8(block).ok()?.lines().peekable();
    let version_line = lines.next()?;
    version_line.strip_prefix("NATS/1.0")?;
    let mut headers = HeaderMap::new();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':')?;
        let name = HeaderName::from_str(name).ok()?;
        let mut value = value.trim_start().to_owned();
        while let Some(v) = lines.next_if(|s| s.starts_with(char::is_whitespace)) {
            value.push_str(v);
        }
        value.truncate(value.trim_end().len());
        let value = HeaderValue::from_str(&value).ok()?;
        headers.append(name, value);
    }
    Some(headers)
}

/// The event NATS ingest takes from a message: what the runtime's consumer decodes and hands to
/// ingest's handler (`None` if it parks the message as undecodable).
pub fn nats_event(headers: Option<&HeaderMap>, payload: &Bytes) -> Option<Event> {
    quorum_bus::decode(headers, payload).ok()
}

/// A header block as async-nats serialises it (`HeaderMap::to_bytes`).
pub fn header_block(headers: &HeaderMap) -> Vec<u8> {
    let mut buf = b"NATS/1.0\r\n".to_vec();
    for (name, values) in headers.iter() {
        for v in values {
            let name: &str = name.as_ref();
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(b": ");
            buf.extend_from_slice(v.as_str().as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
    }
    buf.extend_from_slice(b"\r\n");
    buf
}
