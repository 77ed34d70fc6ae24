//! Per-stream hold-back: the relay never publishes version n+1 of a stream before version n.
//!
//! Commit order (`tx_id`, `position`) can put version n+1 before version n when the writer of n+1 got
//! its transaction id first (it wrote something else before appending). Such an event is held here
//! until its predecessor has been published, and so is every later event of the same stream. While
//! anything is held, the relay's safe cursor stays just before the oldest held event, so a restart
//! re-reads it (docs/adr/0003). Pure logic, no I/O.

use std::collections::{BTreeMap, HashMap};

use quorum_domain::StreamId;
use quorum_event_store::{CommitCursor, RecordedEvent};

/// Events waiting for their stream predecessor.
#[derive(Default, Debug)]
pub struct Holds {
    /// Per stream, held events by version, each with the cursor read just before it; `None` for a
    /// version that was parked instead of published (it goes nowhere, but its successors wait
    /// their turn behind it all the same).
    streams: HashMap<StreamId, BTreeMap<u64, (CommitCursor, Option<RecordedEvent>)>>,
}

impl Holds {
    /// Takes the next event in commit order (`predecessor_later`: its stream predecessor comes later in
    /// commit order) and returns what may be published now, in order: the event itself, then any held
    /// successors it unblocks. `before` is the cursor read just
    /// before this event.
    pub fn admit(
        &mut self,
        event: RecordedEvent,
        predecessor_later: bool,
        before: CommitCursor,
    ) -> Vec<RecordedEvent> {
        let (stream, version) = (event.stream_id.clone(), event.stream_version);
        self.admit_entry(stream, version, Some(event), predecessor_later, before)
    }

    /// Takes a version that will not be published (the relay parked it): it is passed in its turn,
    /// and the held successors it unblocks are returned.
    pub fn admit_parked(
        &mut self,
        stream: StreamId,
        version: u64,
        predecessor_later: bool,
        before: CommitCursor,
    ) -> Vec<RecordedEvent> {
        self.admit_entry(stream, version, None, predecessor_later, before)
    }

    fn admit_entry(
        &mut self,
        stream: StreamId,
        version: u64,
        event: Option<RecordedEvent>,
        predecessor_later: bool,
        before: CommitCursor,
    ) -> Vec<RecordedEvent> {
        // An earlier version of the stream is held: this one must not overtake it.
        let behind_held = self
            .streams
            .get(&stream)
            .and_then(|held| held.keys().next())
            .is_some_and(|&first| first < version);
        if predecessor_later || behind_held {
            self.streams
                .entry(stream)
                .or_default()
                .insert(version, (before, event));
            return Vec::new();
        }
        let mut out: Vec<RecordedEvent> = event.into_iter().collect();
        if let Some(held) = self.streams.get_mut(&stream) {
            let mut next = version + 1;
            while let Some((_, e)) = held.remove(&next) {
                out.extend(e);
                next += 1;
            }
            if held.is_empty() {
                self.streams.remove(&stream);
            }
        }
        out
    }

    /// The cursor a restart may resume from: just before the oldest held event, or `read` when
    /// nothing is held.
    pub fn safe_cursor(&self, read: CommitCursor) -> CommitCursor {
        self.streams
            .values()
            .flat_map(|held| held.values().map(|(before, _)| *before))
            .min()
            .map_or(read, |floor| floor.min(read))
    }

    /// How many events are held.
    pub fn len(&self) -> usize {
        self.streams.values().map(BTreeMap::len).sum()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Forgets everything (the relay re-reads from its safe cursor after a reconcile).
    pub fn clear(&mut self) {
        self.streams.clear();
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use quorum_domain::{Event, TenantId};

    use super::*;

    fn ev(stream: &str, version: u64, tx: u64, pos: i64) -> RecordedEvent {
        let s = StreamId::parse(stream).unwrap();
        let t = TenantId::new("t").unwrap();
        RecordedEvent {
            position: pos,
            tx_id: tx,
            stream_id: s.clone(),
            stream_version: version,
            tenant: t.clone(),
            recorded_at: chrono::Utc::now(),
            event: Event::new("/t", "t.x", s, t, Bytes::new()),
        }
    }

    fn versions(out: &[RecordedEvent]) -> Vec<(String, u64)> {
        out.iter()
            .map(|e| (e.stream_id.to_string(), e.stream_version))
            .collect()
    }

    #[test]
    fn an_inverted_successor_waits_for_its_predecessor() {
        let mut h = Holds::default();
        // Commit order: a/2 (tx 10), b/1 (tx 11), a/3 (tx 12), a/1 (tx 13).
        let c0 = CommitCursor::START;
        assert!(h.admit(ev("a/x", 2, 10, 2), true, c0).is_empty());
        let c1 = CommitCursor {
            tx_id: 10,
            position: 2,
        };
        assert_eq!(
            versions(&h.admit(ev("b/x", 1, 11, 3), false, c1)),
            [("b/x".into(), 1)]
        );
        let c2 = CommitCursor {
            tx_id: 11,
            position: 3,
        };
        // a/3's predecessor a/2 is earlier in commit order, but a/2 is held: a/3 waits too.
        assert!(h.admit(ev("a/x", 3, 12, 4), false, c2).is_empty());
        assert_eq!(h.len(), 2);
        assert_eq!(
            h.safe_cursor(CommitCursor {
                tx_id: 12,
                position: 4
            }),
            c0
        );
        let c3 = CommitCursor {
            tx_id: 12,
            position: 4,
        };
        let out = h.admit(ev("a/x", 1, 13, 1), false, c3);
        assert_eq!(
            versions(&out),
            [("a/x".into(), 1), ("a/x".into(), 2), ("a/x".into(), 3)]
        );
        assert!(h.is_empty());
        let read = CommitCursor {
            tx_id: 13,
            position: 1,
        };
        assert_eq!(h.safe_cursor(read), read);
    }

    #[test]
    fn a_parked_version_lets_its_successors_go_in_their_turn() {
        let mut h = Holds::default();
        let c0 = CommitCursor::START;
        // a/2 comes first and waits for a/1, which cannot be published and is parked.
        assert!(h.admit(ev("a/x", 2, 10, 2), true, c0).is_empty());
        let out = h.admit_parked(StreamId::parse("a/x").unwrap(), 1, false, c0);
        assert_eq!(versions(&out), [("a/x".into(), 2)]);
        assert!(h.is_empty());
        // Parked while an earlier version is held: it waits its turn, then lets a/5 go.
        assert!(h.admit(ev("b/x", 3, 20, 5), true, c0).is_empty());
        assert!(
            h.admit_parked(StreamId::parse("b/x").unwrap(), 4, false, c0)
                .is_empty()
        );
        assert!(h.admit(ev("b/x", 5, 22, 7), false, c0).is_empty());
        let out = h.admit(ev("b/x", 2, 23, 4), false, c0);
        assert_eq!(
            versions(&out),
            [("b/x".into(), 2), ("b/x".into(), 3), ("b/x".into(), 5)]
        );
    }

    #[test]
    fn nothing_held_means_pass_through() {
        let mut h = Holds::default();
        let out = h.admit(ev("a/x", 1, 1, 1), false, CommitCursor::START);
        assert_eq!(out.len(), 1);
        assert!(h.is_empty());
    }
}
