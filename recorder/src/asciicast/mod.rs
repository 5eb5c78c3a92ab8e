//! asciicast, the asciinema recording format: decode v2 and v3 into [`Frame`]s, encode
//! frames back as v2 (what `asciinema` 2.x and asciinema-player read) or v3.
//!
//! ```
//! use gatehouse_recorder::asciicast;
//! let cast = "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.5, \"o\", \"hi\"]\n";
//! let mut dec = asciicast::open(cast.as_bytes()).unwrap();
//! assert_eq!(dec.header().cols, 80);
//! let frame = dec.next().unwrap().unwrap();
//! assert_eq!(frame.t, 500_000);
//! ```
//!
//! Decoding is lazy (one line at a time) and every error names its 1-based line. Times are
//! parsed from the JSON number's text into integer nanoseconds, never through a float, and
//! v3's relative intervals are summed in nanoseconds before rounding to microseconds, so
//! rounding never accumulates into drift over a long recording.
//!
//! Mapping: `"o"` → [`FrameData::Output`], `"i"` → [`FrameData::Input`], `"r"` →
//! [`FrameData::Resize`], `"m"` → [`FrameData::Marker`], v3 `"x"` → an [`Event`] of kind
//! `"exit"` with `{"status": N}`; unknown codes (the format is open to extension) become
//! events of kind `"asciicast.<code>"` holding the raw data.

mod v2;
mod v3;

use std::collections::BTreeMap;
use std::io::BufRead;

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::frame::{Event, Frame, FrameData, Micros};
use crate::manifest::{Manifest, SessionMeta};

/// The asciicast header: what the recorder keeps of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Format version of the file read (2 or 3).
    pub version: u8,
    /// Initial terminal width.
    pub cols: u16,
    /// Initial terminal height.
    pub rows: u16,
    /// When the recording started.
    pub timestamp: Option<OffsetDateTime>,
    /// The recording's title.
    pub title: Option<String>,
    /// The recorded command.
    pub command: Option<String>,
    /// The terminal type (v2: `env.TERM`, v3: `term.type`).
    pub term: Option<String>,
    /// Captured environment variables.
    pub env: BTreeMap<String, String>,
}

impl Header {
    /// A header for `cols`×`rows` with nothing else set.
    pub fn new(cols: u16, rows: u16) -> Header {
        Header {
            version: 2,
            cols,
            rows,
            timestamp: None,
            title: None,
            command: None,
            term: None,
            env: BTreeMap::new(),
        }
    }

    /// The session metadata this header carries (size, title, command, terminal type).
    pub fn meta(&self) -> SessionMeta {
        SessionMeta {
            cols: Some(self.cols),
            rows: Some(self.rows),
            title: self.title.clone(),
            command: self.command.clone(),
            term: self.term.clone(),
            ..SessionMeta::default()
        }
    }

    /// The header to export a stored session with. Sessions without a known size get the
    /// classic 80×24, and so does a zero width or height (`ssh -tt` from a script asks
    /// for a 0×0 terminal, which no player can show).
    pub fn from_manifest(manifest: &Manifest) -> Header {
        let meta = &manifest.meta;
        let mut env = BTreeMap::new();
        if let Some(term) = &meta.term {
            env.insert("TERM".to_string(), term.clone());
        }
        Header {
            version: 2,
            cols: meta.cols.filter(|&c| c > 0).unwrap_or(80),
            rows: meta.rows.filter(|&r| r > 0).unwrap_or(24),
            timestamp: Some(manifest.started_at),
            title: meta.title.clone(),
            command: meta.command.clone(),
            term: meta.term.clone(),
            env,
        }
    }
}

/// Reads the header line, detects the version, and returns a lazy frame decoder.
pub fn open<R: BufRead>(reader: R) -> Result<Decoder<R>> {
    let mut lines = Lines { reader, line: 0, buf: String::new() };
    let Some(first) = lines.next_line()?.map(str::to_string) else {
        return Err(Error::cast(1, "empty file: expected an asciicast header"));
    };
    let line = lines.line;
    let value: serde_json::Value = serde_json::from_str(&first)
        .map_err(|e| Error::cast(line, format!("header is not JSON: {e}")))?;
    let version = value.get("version").and_then(|v| v.as_u64());
    let header = match version {
        Some(2) => v2::header(value),
        Some(3) => v3::header(value),
        Some(v) => Err(format!("unsupported asciicast version {v} (2 and 3 are supported)")),
        None if value.is_object() => Err("header has no numeric \"version\"".to_string()),
        None => Err("first line is not an asciicast header object".to_string()),
    }
    .map_err(|detail| Error::cast(line, detail))?;
    Ok(Decoder { lines, header, clock_ns: 0 })
}

/// A lazy asciicast decoder: an iterator of frames with their times in microseconds.
pub struct Decoder<R> {
    lines: Lines<R>,
    header: Header,
    /// v2: the previous event's absolute time; v3: the running sum of intervals.
    clock_ns: u64,
}

impl<R: BufRead> Decoder<R> {
    /// The header read by [`open`].
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The 1-based number of the line read last.
    pub fn line(&self) -> usize {
        self.lines.line
    }

    fn decode(&mut self, text: &str) -> Result<Option<Frame>, String> {
        let (time, code, data): (&serde_json::value::RawValue, String, serde_json::Value) =
            serde_json::from_str(text).map_err(|e| format!("event is not a JSON [time, code, data] array: {e}"))?;
        let ns = parse_time_ns(time.get())?;
        let t_ns = if self.header.version == 2 {
            if ns < self.clock_ns {
                return Err(format!(
                    "time {} goes backwards (previous event at {})",
                    time.get(),
                    fmt_micros(round_micros(self.clock_ns))
                ));
            }
            ns
        } else {
            self.clock_ns.checked_add(ns).ok_or("time overflows")?
        };
        self.clock_ns = t_ns;
        let t = round_micros(t_ns);
        let data = frame_data(&code, data, self.header.version)?;
        Ok(Some(Frame { t, data }))
    }
}

impl<R: BufRead> Iterator for Decoder<R> {
    type Item = Result<Frame>;

    fn next(&mut self) -> Option<Result<Frame>> {
        loop {
            let text = match self.lines.next_line() {
                Ok(Some(text)) => text.to_string(),
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            // v3 allows comment lines; both versions tolerate blank lines.
            if text.trim().is_empty() || (self.header.version == 3 && text.starts_with('#')) {
                continue;
            }
            let line = self.lines.line;
            match self.decode(&text) {
                Ok(Some(frame)) => return Some(Ok(frame)),
                Ok(None) => continue,
                Err(detail) => return Some(Err(Error::cast(line, detail))),
            }
        }
    }
}

/// Turns one event's code and data into frame data.
fn frame_data(code: &str, data: serde_json::Value, version: u8) -> Result<FrameData, String> {
    let text = |data: serde_json::Value| match data {
        serde_json::Value::String(s) => Ok(s),
        other => Err(format!("\"{code}\" event data must be a string, got {other}")),
    };
    Ok(match code {
        "o" => FrameData::Output(text(data)?.into_bytes().into()),
        "i" => FrameData::Input(text(data)?.into_bytes().into()),
        "m" => FrameData::Marker(text(data)?),
        "r" => {
            let size = text(data)?;
            let (cols, rows) = size
                .split_once('x')
                .and_then(|(c, r)| Some((c.trim().parse().ok()?, r.trim().parse().ok()?)))
                .ok_or_else(|| format!("resize data {size:?} is not COLSxROWS"))?;
            FrameData::Resize { cols, rows }
        }
        "x" if version == 3 => {
            let status = match &data {
                serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
                serde_json::Value::Number(n) => n.as_i64(),
                _ => None,
            }
            .ok_or_else(|| format!("exit data {data} is not a status number"))?;
            FrameData::Event(Event { kind: "exit".into(), data: serde_json::json!({ "status": status }) })
        }
        other => FrameData::Event(Event { kind: format!("asciicast.{other}"), data }),
    })
}

/// Parses a JSON number of seconds into nanoseconds, digit by digit (no float rounding).
/// Digits beyond nanoseconds are truncated.
fn parse_time_ns(text: &str) -> Result<u64, String> {
    let bad = || format!("time {text} is not a non-negative number of seconds");
    if text.starts_with('-') {
        return Err(bad());
    }
    if text.contains(['e', 'E']) {
        // Exponent notation is legal JSON but no recorder writes it; a float is precise
        // enough for the rare file that does.
        let secs: f64 = text.parse().map_err(|_| bad())?;
        if !(secs.is_finite() && secs >= 0.0) {
            return Err(bad());
        }
        return Ok((secs * 1e9).round() as u64);
    }
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs: u64 = int.parse().map_err(|_| bad())?;
    let mut nanos = 0u64;
    for (i, digit) in frac.bytes().take(9).enumerate() {
        nanos += u64::from(digit - b'0') * 10u64.pow(8 - i as u32);
    }
    secs.checked_mul(1_000_000_000).and_then(|s| s.checked_add(nanos)).ok_or_else(bad)
}

fn round_micros(ns: u64) -> Micros {
    (ns + 500) / 1000
}

/// Formats microseconds as seconds with exactly six decimals, from integers.
pub(crate) fn fmt_micros(t: Micros) -> String {
    format!("{}.{:06}", t / 1_000_000, t % 1_000_000)
}

/// Reads lines, counting them, keeping one buffer.
struct Lines<R> {
    reader: R,
    line: usize,
    buf: String,
}

impl<R: BufRead> Lines<R> {
    fn next_line(&mut self) -> Result<Option<&str>> {
        self.buf.clear();
        let n = self.reader.read_line(&mut self.buf).map_err(|e| {
            let what = if e.kind() == std::io::ErrorKind::InvalidData { "not UTF-8" } else { "read error" };
            Error::cast(self.line + 1, format!("{what}: {e}"))
        })?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        Ok(Some(self.buf.trim_end_matches(['\n', '\r'])))
    }
}

/// Which asciicast version an [`Encoder`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// asciicast v2: absolute times (what asciinema 2.x and every player read).
    V2,
    /// asciicast v3: relative intervals, exit events.
    V3,
}

/// Encodes frames as asciicast lines. Stateful only where the format needs it: v3's
/// intervals, and output split in the middle of a UTF-8 character (SSH chunks do that),
/// whose tail is held back until the next chunk of the same stream completes it.
pub struct Encoder {
    version: Version,
    prev_t: Micros,
    output: Utf8Carry,
    input: Utf8Carry,
}

impl Encoder {
    /// An encoder for `version`.
    pub fn new(version: Version) -> Encoder {
        Encoder { version, prev_t: 0, output: Utf8Carry::default(), input: Utf8Carry::default() }
    }

    /// The header line, newline included.
    pub fn header(&self, header: &Header) -> String {
        match self.version {
            Version::V2 => v2::encode_header(header),
            Version::V3 => v3::encode_header(header),
        }
    }

    /// The line for one frame, newline included; `None` for frames this version cannot
    /// express (structured events in v2), a resize to no width or height (no player can
    /// show one; the header says 80×24 then, see [`Header::from_manifest`]) or output
    /// held back waiting for the rest of a UTF-8 character.
    pub fn frame(&mut self, frame: &Frame) -> Option<String> {
        let (code, data) = match &frame.data {
            FrameData::Resize { cols: 0, .. } | FrameData::Resize { rows: 0, .. } => return None,
            FrameData::Output(bytes) => ("o", self.output.push(bytes)?),
            FrameData::Input(bytes) => ("i", self.input.push(bytes)?),
            FrameData::Resize { cols, rows } => ("r", format!("{cols}x{rows}")),
            FrameData::Marker(label) => ("m", label.clone()),
            FrameData::Event(event) => match (self.version, event.kind.as_str()) {
                (Version::V3, "exit") => ("x", event.data.get("status")?.to_string()),
                _ => return None,
            },
        };
        Some(self.line(frame.t, code, &data))
    }

    /// Flushes bytes still held back (an incomplete UTF-8 character at the very end) as
    /// replacement characters, at time `t`.
    pub fn finish(&mut self, t: Micros) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(rest) = self.output.flush() {
            out.push(self.line(t, "o", &rest));
        }
        if let Some(rest) = self.input.flush() {
            out.push(self.line(t, "i", &rest));
        }
        out
    }

    fn line(&mut self, t: Micros, code: &str, data: &str) -> String {
        let t = t.max(self.prev_t);
        let time = match self.version {
            Version::V2 => t,
            Version::V3 => t - self.prev_t,
        };
        self.prev_t = t;
        let data = serde_json::to_string(data).expect("a string always serializes");
        format!("[{}, \"{code}\", {data}]\n", fmt_micros(time))
    }
}

/// Holds back a trailing incomplete UTF-8 sequence between chunks of one stream.
#[derive(Default)]
struct Utf8Carry {
    pending: Vec<u8>,
}

impl Utf8Carry {
    /// The text of `bytes` (after what was pending), or `None` if all of it is pending.
    fn push(&mut self, bytes: &[u8]) -> Option<String> {
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(bytes);
        let mut text = String::with_capacity(buf.len());
        let mut rest = &buf[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    text.push_str(s);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    text.push_str(std::str::from_utf8(valid).expect("checked valid"));
                    match e.error_len() {
                        // Incomplete character at the end: wait for the next chunk.
                        None => {
                            self.pending = after.to_vec();
                            break;
                        }
                        Some(n) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[n..];
                        }
                    }
                }
            }
        }
        (!text.is_empty()).then_some(text)
    }

    fn flush(&mut self) -> Option<String> {
        let pending = std::mem::take(&mut self.pending);
        (!pending.is_empty()).then(|| String::from_utf8_lossy(&pending).into_owned())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_session_without_a_usable_size_exports_as_80_by_24() {
        let mut m = Manifest::new(uuid::Uuid::nil(), crate::manifest::SessionMeta::default(), time::OffsetDateTime::UNIX_EPOCH);
        let size = |m: &Manifest| (Header::from_manifest(m).cols, Header::from_manifest(m).rows);
        assert_eq!(size(&m), (80, 24));
        (m.meta.cols, m.meta.rows) = (Some(0), Some(0));
        assert_eq!(size(&m), (80, 24));
        (m.meta.cols, m.meta.rows) = (Some(132), Some(0));
        assert_eq!(size(&m), (132, 24));
        (m.meta.cols, m.meta.rows) = (Some(100), Some(30));
        assert_eq!(size(&m), (100, 30));
        // And the 0×0 resize such a session starts with is left out.
        let mut enc = Encoder::new(Version::V2);
        assert_eq!(enc.frame(&Frame { t: 1, data: FrameData::Resize { cols: 0, rows: 0 } }), None);
        assert_eq!(enc.frame(&Frame { t: 2, data: FrameData::Resize { cols: 80, rows: 0 } }), None);
        assert_eq!(enc.frame(&Frame { t: 3, data: FrameData::Resize { cols: 80, rows: 25 } }).as_deref(), Some("[0.000003, \"r\", \"80x25\"]\n"));
    }

    use super::*;

    #[test]
    fn times_parse_exactly() {
        for (text, ns) in [
            ("0", 0),
            ("1.5", 1_500_000_000),
            ("0.000001", 1_000),
            ("12.3456789", 12_345_678_900),
            ("0.1234567891", 123_456_789),
            ("1e-3", 1_000_000),
        ] {
            assert_eq!(parse_time_ns(text), Ok(ns), "{text}");
        }
        for bad in ["-1", "", "1.2.3", "abc", ".5"] {
            assert!(parse_time_ns(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn utf8_split_across_chunks_is_rejoined() {
        let mut carry = Utf8Carry::default();
        let bytes = "a世b".as_bytes();
        assert_eq!(carry.push(&bytes[..2]).as_deref(), Some("a"));
        assert_eq!(carry.push(&bytes[2..3]), None);
        assert_eq!(carry.push(&bytes[3..]).as_deref(), Some("世b"));
        assert_eq!(carry.push(b"x\xffy").as_deref(), Some("x\u{fffd}y"));
        assert_eq!(carry.push(b"\xe4"), None);
        assert_eq!(carry.flush().as_deref(), Some("\u{fffd}"));
    }

    #[test]
    fn micros_format_without_floats() {
        assert_eq!(fmt_micros(0), "0.000000");
        assert_eq!(fmt_micros(1_000_001), "1.000001");
        assert_eq!(fmt_micros(123_456_789_012), "123456.789012");
    }
}
