//! Reading recordings back: frames from a time, and verification of checksums and the
//! hash chain. A bad segment is reported by name and never stops the others from reading.

use futures::{Stream, StreamExt};
use uuid::Uuid;

use super::Storage;
use crate::error::{Error, ErrorKind, Result};
use crate::frame::{Frame, Micros};
use crate::layout;
use crate::manifest::{Manifest, SegmentInfo};
use crate::segment;

/// Segments fetched ahead of the one being read.
const PREFETCH: usize = 2;

/// What [`Storage::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The session.
    pub id: Uuid,
    /// Segments the manifest lists.
    pub segments: usize,
    /// Frames read from the segments that passed.
    pub frames: u64,
    /// Everything wrong, in segment order. Empty means the recording is intact.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One thing wrong with a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The segment involved, if the problem is about one.
    pub seq: Option<u64>,
    /// The kind of failure: `NotFound` (missing), `Corrupt`, `Unavailable`...
    pub kind: ErrorKind,
    /// What is wrong, naming the object.
    pub message: String,
}

impl Storage {
    /// The session's frames at or after `from` (µs since its start), segment by segment.
    /// A segment that is missing or fails its checks yields one `Err` naming it; the
    /// stream then goes on with the next segment.
    pub fn frames(&self, manifest: &Manifest, from: Micros) -> impl Stream<Item = Result<Frame>> + Send + 'static {
        let storage = self.clone();
        let id = manifest.id;
        let segments: Vec<SegmentInfo> = manifest.segments.iter().filter(|s| s.last_t >= from).cloned().collect();
        futures::stream::iter(segments)
            .map(move |info| {
                let storage = storage.clone();
                async move { storage.read_segment(id, &info).await }
            })
            .buffered(PREFETCH)
            .flat_map(move |res| {
                let items: Vec<Result<Frame>> = match res {
                    Ok(frames) => frames.into_iter().filter(|f| f.t >= from).map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
                futures::stream::iter(items)
            })
    }

    /// Fetches one segment and checks it against its manifest entry: SHA-256, header,
    /// checksum, frames.
    async fn read_segment(&self, id: Uuid, info: &SegmentInfo) -> Result<Vec<Frame>> {
        let (header, frames) = self.fetch_segment(id, info).await?;
        check_header(&header, id, info, layout::segment_path(id, info.seq)?.as_ref())?;
        Ok(frames)
    }

    async fn fetch_segment(&self, id: Uuid, info: &SegmentInfo) -> Result<(segment::Header, Vec<Frame>)> {
        let path = layout::segment_path(id, info.seq)?;
        let name = path.to_string();
        let bytes = self.get(&path).await.map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound(format!("segment {name}")),
            other => other,
        })?;
        let hash = segment::hex(&segment::hash(&bytes));
        let (header, body) = segment::open(&bytes, &name)?;
        if hash != info.hash {
            return Err(Error::corrupt(
                format!("segment {name}"),
                format!("SHA-256 {hash} differs from the manifest's {}", info.hash),
            ));
        }
        let frames = segment::frames(&header, body, &name)?;
        Ok((header, frames))
    }

    /// Checks every segment of a session: present, checksum, SHA-256 as the manifest
    /// lists it, each header's previous-segment hash (the chain), and the chain head.
    pub async fn verify(&self, id: Uuid) -> Result<VerifyReport> {
        let manifest = self.manifest(id).await?;
        let mut report = VerifyReport { id, segments: manifest.segments.len(), frames: 0, problems: Vec::new() };
        let mut prev_hash = [0u8; 32];
        let mut prev_hex: Option<String> = None;
        for (i, info) in manifest.segments.iter().enumerate() {
            let name = layout::segment_path(id, info.seq)?.to_string();
            let mut problem = |kind, message: String| report.problems.push(Problem { seq: Some(info.seq), kind, message });
            if info.seq != i as u64 {
                problem(ErrorKind::Corrupt, format!("manifest lists segment {} at position {i}", info.seq));
            }
            match self.fetch_segment(id, info).await {
                Ok((header, frames)) => {
                    let check = || -> Result<()> {
                        check_header(&header, id, info, &name)?;
                        if header.prev_hash != prev_hash {
                            return Err(Error::corrupt(
                                format!("segment {name}"),
                                format!(
                                    "hash chain broken: previous-segment hash {} should be {}",
                                    segment::hex(&header.prev_hash),
                                    segment::hex(&prev_hash)
                                ),
                            ));
                        }
                        Ok(())
                    };
                    match check() {
                        Ok(()) => report.frames += frames.len() as u64,
                        Err(e) => problem(e.kind(), e.to_string()),
                    }
                }
                Err(e) => problem(e.kind(), e.to_string()),
            }
            // The chain continues from what the manifest says, so one bad segment is
            // reported once rather than breaking every link after it.
            prev_hash = unhex(&info.hash).unwrap_or([0; 32]);
            prev_hex = Some(info.hash.clone());
        }
        if manifest.chain_head != prev_hex {
            report.problems.push(Problem {
                seq: None,
                kind: ErrorKind::Corrupt,
                message: format!(
                    "manifest of {id}: chain head {:?} is not the last segment's hash {:?}",
                    manifest.chain_head, prev_hex
                ),
            });
        }
        Ok(report)
    }
}

fn check_header(header: &segment::Header, id: Uuid, info: &SegmentInfo, name: &str) -> Result<()> {
    let expected = (id, info.seq, info.first_t, info.last_t, info.frames);
    let found = (header.session, header.seq, header.first_t, header.last_t, u64::from(header.frames));
    if expected != found {
        return Err(Error::corrupt(
            format!("segment {name}"),
            format!("header (session, seq, first, last, frames) = {found:?}, manifest says {expected:?}"),
        ));
    }
    Ok(())
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
