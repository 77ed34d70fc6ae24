//! `POST /v1/events` in batch mode: a request (header lines, an empty line, the body) parsed as
//! ingest parses it; every event it accepts must travel (see the quorum-fuzz crate).
#![no_main]

use libfuzzer_sys::fuzz_target;
use quorum_fuzz::{Mode, check, http_events};

fuzz_target!(|input: &[u8]| {
    if let Some(events) = http_events(Mode::Batch, input) {
        check(&events);
    }
});
