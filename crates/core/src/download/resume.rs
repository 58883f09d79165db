//! Pure decisions of a resumable download: what to ask for, and what an answer means.

/// What to do with the partial file after the server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The server sends the rest from where we asked: append.
    Append,
    /// The server sends the whole file (a 200 where 206 was asked, or a range that does
    /// not start where we asked): truncate and start over, safely.
    Restart,
    /// Nothing left to send: the partial file already has every byte.
    Complete,
    /// The server refused the range and we do not have the whole file: truncate, ask again.
    RetryFromZero,
}

/// Reads the status and `Content-Range` of an answer to a request from byte `asked_from`.
pub fn answer(asked_from: u64, status: u16, content_range: Option<&str>, total: u64) -> Answer {
    match status {
        206 => match content_range.and_then(parse_content_range_start) {
            Some(start) if start == asked_from => Answer::Append,
            _ => Answer::Restart,
        },
        416 if asked_from == total => Answer::Complete,
        416 => Answer::RetryFromZero,
        _ if asked_from == 0 => Answer::Append,
        _ => Answer::Restart,
    }
}

/// `bytes 100-199/200` → 100.
fn parse_content_range_start(v: &str) -> Option<u64> {
    v.trim()
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The `Range` header for a partial file of `have` bytes (none when starting fresh).
pub fn range_header(have: u64) -> Option<String> {
    (have > 0).then(|| format!("bytes={have}-"))
}

/// Delay before retry `attempt` (1-based): 0.5 s doubling, capped at 30 s.
pub fn backoff(attempt: u32, base: std::time::Duration) -> std::time::Duration {
    base.saturating_mul(1u32 << attempt.saturating_sub(1).min(10))
        .min(std::time::Duration::from_secs(30))
}

/// Bytes to keep free beyond the download: 2% of it, at least 100 MB.
pub fn free_space_margin(size: u64) -> u64 {
    (size / 50).max(100_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn answers() {
        let cases = [
            (0, 200, None, 1000, Answer::Append),
            (500, 206, Some("bytes 500-999/1000"), 1000, Answer::Append),
            (500, 200, None, 1000, Answer::Restart),
            (500, 206, Some("bytes 0-999/1000"), 1000, Answer::Restart),
            (500, 206, None, 1000, Answer::Restart),
            (500, 206, Some("garbage"), 1000, Answer::Restart),
            (1000, 416, Some("bytes */1000"), 1000, Answer::Complete),
            (1200, 416, Some("bytes */1000"), 1000, Answer::RetryFromZero),
        ];
        for (from, status, cr, total, want) in cases {
            assert_eq!(
                answer(from, status, cr, total),
                want,
                "{from} {status} {cr:?}"
            );
        }
    }

    #[test]
    fn ranges_and_backoff() {
        assert_eq!(range_header(0), None);
        assert_eq!(range_header(42).as_deref(), Some("bytes=42-"));
        let b = Duration::from_millis(500);
        assert_eq!(backoff(1, b), Duration::from_millis(500));
        assert_eq!(backoff(3, b), Duration::from_secs(2));
        assert_eq!(backoff(30, b), Duration::from_secs(30));
        assert_eq!(free_space_margin(1_000), 100_000_000);
        assert_eq!(free_space_margin(20_000_000_000), 400_000_000);
    }
}
