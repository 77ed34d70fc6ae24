//! A message on `quorum.ingest.<tenant>.…` as NATS ingest takes it: a header block (`NATS/1.0`, the
//! header lines, an empty line) and the payload, or the payload alone; parsed as async-nats parses
//! what it receives, decoded by `quorum_bus::decode`, checked by ingest. Every event it accepts must
//! travel (see the quorum-fuzz crate).
#![no_main]

use libfuzzer_sys::fuzz_target;
use quorum_fuzz::{check, nats_event, nats_message};

fuzz_target!(|input: &[u8]| {
    let Some((headers, payload)) = nats_message(input) else {
        return;
    };
    if let Some(event) = nats_event(headers.as_ref(), &payload) {
        check(std::slice::from_ref(&event));
    }
});
