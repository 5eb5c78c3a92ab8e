//! The segment object: a sealed, compressed, checksummed batch of frames (format
//! described in the crate docs).

use bytes::Bytes;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::columns::ColumnReader;
use crate::error::{Error, Result};
use crate::frame::{Frame, Micros};

/// First bytes of every segment. The `\r\n\x1a` tail (as in PNG) catches text-mode
/// mangling and `type`-ing the file by accident.
pub(crate) const MAGIC: [u8; 8] = *b"GHSEG\r\n\x1a";
/// Segment format version written by this code (1, the row layout of the frame headers,
/// is still read).
pub(crate) const FORMAT: u16 = 2;
/// Bytes before the compressed body.
pub(crate) const HEADER_LEN: usize = 96;
/// Bytes after the body: the CRC-32 trailer.
const TRAILER_LEN: usize = 4;
/// Largest uncompressed body we agree to inflate: bounds memory when a corrupt header
/// claims a huge size. Sealing happens at 4 MiB by default; 256 MiB leaves ample room.
const MAX_RAW: u32 = 256 << 20;

/// The fixed-size header of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// Format version: [`FORMAT`] for what this code writes.
    pub format: u16,
    pub session: Uuid,
    pub seq: u64,
    pub first_t: Micros,
    pub last_t: Micros,
    pub frames: u32,
    pub raw_len: u32,
    pub prev_hash: [u8; 32],
}

/// The zstd compressor segments are sealed with, at `level`. At levels 1 and 2 its match
/// finder gets a 32 Ki-entry hash table (zstd's own: 8–16 Ki) and a window as large as a
/// segment (4 MiB; zstd's own: 512 KiB–1 MiB): terminal output repeats itself (prompts,
/// colours, the same paths and log prefixes, a full-screen program's redraws) further
/// apart than the defaults reach. On the ingest benchmark's workload that stores about
/// 3.5 % less and compresses slightly faster than level 1 as it comes; a 64 Ki-entry
/// table would store 0.7 % less again but compress 7 % slower (its table no longer fits
/// the cache).
pub(crate) fn compressor(level: i32) -> zstd::bulk::Compressor<'static> {
    use zstd::stream::raw::CParameter;
    let mut zstd = zstd::bulk::Compressor::new(level).expect("valid zstd level");
    if level <= 2 {
        zstd.set_parameter(CParameter::HashLog(15)).expect("hash log 15 is valid");
        zstd.set_parameter(CParameter::WindowLog(22)).expect("window log 22 is valid");
    }
    zstd
}

/// SHA-256 of a whole segment object: the link of the hash chain.
pub(crate) fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds the segment object for `raw` (a columnar body) described by `header`.
#[cfg(test)]
pub(crate) fn seal(header: &Header, raw: &[u8], zstd: &mut zstd::bulk::Compressor<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    seal_into(header, &[raw], zstd, &mut out);
    out
}

/// [`seal`] into `out` (cleared first), so a sealer thread can reuse one buffer. The body
/// may come in `parts` (the sealer compresses a write-ahead file's output region in
/// place, then the other columns): each is compressed as its own zstd frame, and
/// concatenated frames decompress as the one body.
pub(crate) fn seal_into(header: &Header, parts: &[&[u8]], zstd: &mut zstd::bulk::Compressor<'_>, out: &mut Vec<u8>) {
    let bound: usize = parts.iter().map(|p| zstd::zstd_safe::compress_bound(p.len())).sum();
    out.clear();
    out.reserve(HEADER_LEN + bound + TRAILER_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&header.format.to_le_bytes());
    out.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
    out.extend_from_slice(header.session.as_bytes());
    out.extend_from_slice(&header.seq.to_le_bytes());
    out.extend_from_slice(&header.first_t.to_le_bytes());
    out.extend_from_slice(&header.last_t.to_le_bytes());
    out.extend_from_slice(&header.frames.to_le_bytes());
    out.extend_from_slice(&header.raw_len.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // body length, patched below
    out.extend_from_slice(&header.prev_hash);
    debug_assert_eq!(out.len(), HEADER_LEN);
    // Compress straight into the spare capacity after the header (no zero-filling of a
    // megabyte per segment): a cursor at the end tells zstd where to start.
    let mut cursor = std::io::Cursor::new(std::mem::take(out));
    let mut body_len = 0;
    for part in parts {
        cursor.set_position((HEADER_LEN + body_len) as u64);
        body_len += zstd.compress_to_buffer(part, &mut cursor).expect("compress_bound is always enough");
    }
    *out = cursor.into_inner();
    debug_assert_eq!(out.len(), HEADER_LEN + body_len);
    out[60..64].copy_from_slice(&(body_len as u32).to_le_bytes());
    let crc = crc32fast::hash(out);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Checks a segment object's framing and checksum and inflates its body. `name` (the
/// object path) goes into every error.
pub(crate) fn open(bytes: &[u8], name: &str) -> Result<(Header, Bytes)> {
    let bad = |detail: String| Error::corrupt(format!("segment {name}"), detail);
    if bytes.len() < HEADER_LEN + TRAILER_LEN {
        return Err(bad(format!("{} bytes is shorter than a segment header", bytes.len())));
    }
    if bytes[..8] != MAGIC {
        return Err(bad("bad magic: not a gatehouse segment".into()));
    }
    let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let version = u16_at(8);
    if !(1..=FORMAT).contains(&version) {
        return Err(bad(format!("format version {version}, this build reads 1 to {FORMAT}")));
    }
    let header_len = usize::from(u16_at(10));
    let body_len = u32_at(60) as usize;
    if header_len != HEADER_LEN || HEADER_LEN + body_len + TRAILER_LEN != bytes.len() {
        return Err(bad(format!(
            "{} bytes, header says {} (truncated or extended)",
            bytes.len(),
            header_len + body_len + TRAILER_LEN
        )));
    }
    let (content, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    if crc32fast::hash(content) != u32::from_le_bytes(trailer.try_into().unwrap()) {
        return Err(bad("checksum mismatch".into()));
    }
    let header = Header {
        format: version,
        session: Uuid::from_slice(&bytes[12..28]).expect("16 bytes"),
        seq: u64_at(28),
        first_t: u64_at(36),
        last_t: u64_at(44),
        frames: u32_at(52),
        raw_len: u32_at(56),
        prev_hash: bytes[64..96].try_into().unwrap(),
    };
    if header.raw_len > MAX_RAW {
        return Err(bad(format!("claims {} uncompressed bytes", header.raw_len)));
    }
    let raw = zstd::bulk::decompress(&content[HEADER_LEN..], header.raw_len as usize)
        .map_err(|e| bad(format!("zstd: {e}")))?;
    if raw.len() != header.raw_len as usize {
        return Err(bad(format!("body inflates to {} bytes, header says {}", raw.len(), header.raw_len)));
    }
    Ok((header, Bytes::from(raw)))
}

/// Decodes a body's frames and checks them against the header.
pub(crate) fn frames(header: &Header, raw: Bytes, name: &str) -> Result<Vec<Frame>> {
    let bad = |detail: String| Error::corrupt(format!("segment {name}"), detail);
    let mut reader = ColumnReader::new(raw, header.format).map_err(bad)?;
    let mut out = Vec::with_capacity(header.frames as usize);
    while let Some(frame) = reader.next_frame() {
        out.push(frame.map_err(bad)?);
    }
    let (first, last) = (out.first().map(|f| f.t), out.last().map(|f| f.t));
    if out.len() != header.frames as usize || first.is_some_and(|t| t != header.first_t)
        || last.is_some_and(|t| t != header.last_t)
    {
        return Err(bad(format!(
            "body holds {} frames over {:?}..{:?}, header says {} over {}..{}",
            out.len(),
            first,
            last,
            header.frames,
            header.first_t,
            header.last_t
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn sample() -> (Header, Vec<u8>, Vec<Frame>) {
        let frames = vec![Frame::output(10, "abc"), Frame::input(20, "d"), Frame::resize(30, 100, 40)];
        let (raw, _) = crate::columns::body_of(&frames);
        let header = Header {
            format: FORMAT,
            session: Uuid::now_v7(),
            seq: 7,
            first_t: 10,
            last_t: 30,
            frames: 3,
            raw_len: raw.len() as u32,
            prev_hash: [7; 32],
        };
        (header, raw, frames)
    }

    #[test]
    fn seal_then_open() {
        let (header, raw, frames) = sample();
        let bytes = seal(&header, &raw, &mut zstd::bulk::Compressor::new(3).unwrap());
        let (h, body) = open(&bytes, "x.seg").unwrap();
        assert_eq!(h, header);
        assert_eq!(self::frames(&h, body, "x.seg").unwrap(), frames);
    }

    #[test]
    fn format_1_segments_still_read() {
        let (mut header, _, frames) = sample();
        let raw = crate::columns::tests::body_v1(&frames);
        header.format = 1;
        header.raw_len = raw.len() as u32;
        let bytes = seal(&header, &raw, &mut zstd::bulk::Compressor::new(3).unwrap());
        let (h, body) = open(&bytes, "old.seg").unwrap();
        assert_eq!(h.format, 1);
        assert_eq!(self::frames(&h, body, "old.seg").unwrap(), frames);
        header.format = FORMAT + 1;
        let bytes = seal(&header, &raw, &mut zstd::bulk::Compressor::new(3).unwrap());
        assert!(open(&bytes, "new.seg").unwrap_err().to_string().contains("format version 3, this build reads 1 to 2"));
    }

    #[test]
    fn any_flipped_byte_or_truncation_is_caught() {
        let (header, raw, _) = sample();
        let bytes = seal(&header, &raw, &mut zstd::bulk::Compressor::new(3).unwrap());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            let err = open(&bad, "s/1.seg").and_then(|(h, b)| self::frames(&h, b, "s/1.seg")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupt, "byte {i}");
            assert!(err.to_string().contains("segment s/1.seg"), "{err}");
        }
        for len in [0, 50, HEADER_LEN, bytes.len() - 1] {
            assert_eq!(open(&bytes[..len], "t").unwrap_err().kind(), ErrorKind::Corrupt, "len {len}");
        }
    }
}
