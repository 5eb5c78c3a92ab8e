//! A moment inside a session, as an offset from its start: how `search` prints a hit's
//! time, how `play` and `export` take it back (`--from`, `--until`), and the screen a
//! terminal must show to go on from there.
//!
//! Known limit: a `--from` that falls inside an escape sequence or a UTF-8 character
//! split across two frames shows the rest of it as text after the rebuilt screen.

use anyhow::bail;
use futures::{Stream, StreamExt};
use gatehouse_recorder::{Frame, FrameData, Manifest, Micros, RecordingState, Storage};

/// `H:MM:SS.mmm` (`gatehouse search` prints it after a `+`), which [`parse`] reads.
pub fn format(us: Micros) -> String {
    let secs = us / 1_000_000;
    format!("{}:{:02}:{:02}.{:03}", secs / 3600, secs / 60 % 60, secs % 60, us / 1000 % 1000)
}

/// An offset: `+0:01:23.456` (as `search` prints it; the `+` and the hours may be left
/// out: `1:23`), plain seconds (`83.5`), or with units (`90s`, `1m30s`, `2h`, `1h2m3.5s`).
pub fn parse(text: &str) -> anyhow::Result<Micros> {
    let bad = || anyhow::anyhow!("{text:?} is not an offset into a session: use +0:01:23.456, 1:23, 83.5 or 1m23s");
    let body = text.trim().strip_prefix('+').unwrap_or(text.trim());
    if body.is_empty() {
        return Err(bad());
    }
    let secs = if body.contains(':') {
        let parts: Vec<&str> = body.split(':').collect();
        if parts.len() > 3 {
            return Err(bad());
        }
        let (last, whole) = parts.split_last().expect("split gives one part at least");
        let mut secs = 0.0;
        for (i, p) in whole.iter().enumerate() {
            let n: u64 = p.parse().map_err(|_| bad())?;
            // After the first field, minutes and seconds stay under 60.
            if i > 0 && n >= 60 {
                return Err(bad());
            }
            secs = secs * 60.0 + n as f64;
        }
        let s = seconds(last).ok_or_else(bad)?;
        if s >= 60.0 {
            return Err(bad());
        }
        secs * 60.0 + s
    } else if body.ends_with(['s', 'm', 'h']) {
        let (mut secs, mut rest) = (0.0, body);
        for (unit, scale) in [('h', 3600.0), ('m', 60.0), ('s', 1.0)] {
            if let Some((num, after)) = rest.split_once(unit) {
                secs += seconds(num).ok_or_else(bad)? * scale;
                rest = after;
            }
        }
        if !rest.is_empty() {
            return Err(bad());
        }
        secs
    } else {
        seconds(body).ok_or_else(bad)?
    };
    if !(secs.is_finite() && secs < 1e12) {
        bail!("{text:?} is too far into a session");
    }
    Ok((secs * 1e6).round() as Micros)
}

/// `--from` and `--until` must name a stretch of the session.
pub fn check_range(manifest: &Manifest, from: Micros, until: Option<Micros>) -> anyhow::Result<()> {
    if let Some(until) = until
        && until < from
    {
        bail!("--until {} is before --from {}", format(until), format(from));
    }
    // A live session grows; a finished one ends at its duration.
    let end = manifest.segments.iter().map(|s| s.last_t).max().unwrap_or(0).max(manifest.duration);
    if manifest.state != RecordingState::Live && from > end {
        bail!("--from {} is past the end of session {} (it lasts {})", format(from), manifest.id, format(end));
    }
    Ok(())
}

/// The terminal at `t`: what puts a terminal in the state the session's terminal was in
/// then (a reset, then the screen as it was: see `gatehouse_indexer::redraw`), and its
/// size as `(cols, rows)`. Uses the session's keyframes when it has some.
pub async fn screen_at(storage: &Storage, manifest: &Manifest, t: Micros) -> anyhow::Result<(Vec<u8>, u16, u16)> {
    let keyframes = gatehouse_indexer::load_keyframes(&storage.object_store(), manifest).await?;
    let parser = gatehouse_indexer::screen_at(storage, manifest, &keyframes, t).await?;
    let mut bytes = b"\x1bc".to_vec();
    bytes.extend_from_slice(&gatehouse_indexer::redraw(parser.screen()));
    let (rows, cols) = parser.screen().size();
    Ok((bytes, cols.get(), rows.get()))
}

/// The frames of the stretch `from..=until`, damaged segments as `Err` (see
/// `Storage::frames`). When `drawn` (the screen at `from`, see [`screen_at`], was shown
/// first), the output and resizes at exactly `from` are left out: that screen holds
/// them. Input, markers and events at `from` are on no screen and stay.
pub fn frames(
    storage: &Storage,
    manifest: &Manifest,
    from: Micros,
    until: Option<Micros>,
    drawn: bool,
) -> impl Stream<Item = gatehouse_recorder::Result<Frame>> + Send + 'static {
    let on_screen = move |f: &Frame| drawn && f.t <= from && matches!(f.data, FrameData::Output(_) | FrameData::Resize { .. });
    storage
        .frames(manifest, from)
        .take_while(move |f| std::future::ready(!f.as_ref().is_ok_and(|f| until.is_some_and(|u| f.t > u))))
        .filter(move |f| std::future::ready(!f.as_ref().is_ok_and(on_screen)))
}

/// A non-negative decimal number of seconds (digits, at most one point).
fn seconds(text: &str) -> Option<f64> {
    let digits = text.chars().all(|c| c.is_ascii_digit() || c == '.') && text.chars().any(|c| c.is_ascii_digit());
    if digits { text.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_search_prints_and_the_usual_forms() {
        for (text, us) in [
            ("+0:01:23.456", 83_456_000),
            ("0:01:23.456", 83_456_000),
            ("1:23", 83_000_000),
            ("2:00:00", 7_200_000_000),
            ("83.5", 83_500_000),
            ("0", 0),
            ("90s", 90_000_000),
            ("1m30s", 90_000_000),
            ("2h", 7_200_000_000),
            ("1h2m3.5s", 3_723_500_000),
            ("1m", 60_000_000),
        ] {
            assert_eq!(parse(text).unwrap(), us, "{text}");
        }
        for us in [0, 83_456_000, 7_200_000_000, 3_723_500_000] {
            assert_eq!(parse(&format(us)).unwrap(), us);
        }
    }

    #[test]
    fn refuses_what_is_not_an_offset() {
        for text in ["", "+", "abc", "1:2:3:4", "1:60", "1:75:00", "-5", "5x", "1s2m", "m", "1.2.3", ":30"] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains("not an offset"), "{text}: {err}");
        }
    }
}
