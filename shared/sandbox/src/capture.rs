//! Bounded capture of a child's output stream.

use std::future::pending;
use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Keeps the first `cap` bytes of a stream; later bytes are counted as truncation and
/// dropped, but still read so the child never blocks on a full pipe.
#[derive(Debug)]
pub(crate) struct Capture {
    pub(crate) bytes: Vec<u8>,
    pub(crate) truncated: bool,
    cap: usize,
}

impl Capture {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            bytes: Vec::new(),
            truncated: false,
            cap,
        }
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        let room = self.cap.saturating_sub(self.bytes.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.bytes.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// Reads from `stream` if it is still open; a closed stream never completes, so that a
/// `select!` branch over it can stay in place without spinning.
pub(crate) async fn read_open<R: AsyncRead + Unpin>(
    stream: &mut Option<R>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match stream {
        Some(s) => s.read(buf).await,
        None => pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_bytes_and_flags_the_rest() {
        let mut c = Capture::new(5);
        c.push(b"abc");
        assert!(!c.truncated);
        c.push(b"defg");
        c.push(b"hij");
        assert_eq!(c.bytes, b"abcde");
        assert!(c.truncated);
    }

    #[test]
    fn exactly_full_is_not_truncated() {
        let mut c = Capture::new(3);
        c.push(b"abc");
        c.push(b"");
        assert_eq!(c.bytes, b"abc");
        assert!(!c.truncated);
    }
}
