//! Seeking: the screen at time `t`, from the nearest keyframe plus the frames after it.

use std::sync::Arc;

use futures::StreamExt as _;
use gatehouse_recorder::{Frame, FrameData, Manifest, Micros, Storage};
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload, path::Path};

use super::{Keyframe, decode_keyframes, encode_keyframes};
use crate::error::{Error, Result};

/// The terminal size a session starts with: its manifest's, else 80×24. Returns
/// `(cols, rows)` like `Extractor::new` takes them.
pub fn initial_size(manifest: &Manifest) -> (u16, u16) {
    known_size(manifest.meta.cols.unwrap_or(0), manifest.meta.rows.unwrap_or(0))
}

/// A size with unknown (zero) dimensions replaced by 80 columns, 24 rows: a client without
/// a terminal (`ssh -tt` from a pipe) reports 0×0, and programs then assume 80×24 too.
pub fn known_size(cols: u16, rows: u16) -> (u16, u16) {
    (if cols == 0 { 80 } else { cols }, if rows == 0 { 24 } else { rows })
}

/// Applies one frame to a replay parser exactly as the indexing pipeline's parser sees it:
/// output is processed, resizes resize (unknown dimensions as in [`known_size`]),
/// everything else is ignored.
pub fn apply_frame(parser: &mut vt100::Parser, frame: &Frame) {
    match &frame.data {
        FrameData::Output(bytes) => parser.process(bytes),
        FrameData::Resize { cols, rows } => {
            let (cols, rows) = known_size(*cols, *rows);
            let nz = |n: u16| std::num::NonZeroU16::new(n).unwrap_or(std::num::NonZeroU16::MIN);
            parser.set_size(nz(rows), nz(cols));
        }
        _ => {}
    }
}

/// Where a session's keyframes are stored: `keyframes/YYYY/MM/DD/<id>.kf`.
pub(crate) fn keyframe_path(manifest: &Manifest) -> Path {
    let d = manifest.started_at.to_offset(time::UtcOffset::UTC).date();
    Path::from(format!(
        "keyframes/{:04}/{:02}/{:02}/{}.kf",
        d.year(),
        u8::from(d.month()),
        d.day(),
        manifest.id
    ))
}

/// Stores a session's keyframes (replacing any earlier ones).
pub async fn store_keyframes(store: &Arc<dyn ObjectStore>, manifest: &Manifest, keyframes: &[Keyframe]) -> Result<()> {
    let bytes = encode_keyframes(manifest.id, keyframes);
    store.put(&keyframe_path(manifest), PutPayload::from(bytes)).await?;
    Ok(())
}

/// A session's keyframes; empty when none were stored (not indexed yet): seeking then
/// replays from the start, which is slower but exact.
pub async fn load_keyframes(store: &Arc<dyn ObjectStore>, manifest: &Manifest) -> Result<Vec<Keyframe>> {
    let path = keyframe_path(manifest);
    let bytes = match store.get(&path).await {
        Ok(got) => got.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    decode_keyframes(&bytes, manifest.id, path.as_ref())
}

/// The screen at time `t` (µs since session start): the state after every frame with
/// time ≤ `t`. Starts from the last keyframe at or before `t` and replays the frames after it.
pub async fn screen_at(
    storage: &Storage,
    manifest: &Manifest,
    keyframes: &[Keyframe],
    t: Micros,
) -> Result<vt100::Parser> {
    let start = start_point(manifest, keyframes, t);
    replay_stream(storage.frames(manifest, start.from), start, t).await
}

/// The screen at time `t` by replaying the whole session from its start (no keyframes).
pub async fn replay_to(storage: &Storage, manifest: &Manifest, t: Micros) -> Result<vt100::Parser> {
    let start = start_point(manifest, &[], t);
    replay_stream(storage.frames(manifest, 0), start, t).await
}

/// Where a seek to `t` starts: a restored keyframe, or a fresh parser at time 0.
pub(crate) struct Start {
    pub(crate) parser: vt100::Parser,
    /// Read frames from this time...
    pub(crate) from: Micros,
    /// ...skipping this many (already inside the keyframe).
    pub(crate) skip: u32,
}

pub(crate) fn start_point(manifest: &Manifest, keyframes: &[Keyframe], t: Micros) -> Start {
    match keyframes.partition_point(|k| k.t <= t).checked_sub(1) {
        Some(i) => {
            let k = &keyframes[i];
            Start { parser: k.restore(), from: k.t, skip: k.skip }
        }
        None => {
            let (cols, rows) = initial_size(manifest);
            Start { parser: super::new_parser(rows, cols), from: 0, skip: 0 }
        }
    }
}

/// Applies the frames of `frames` (those at or after `start.from`, in order) up to time
/// `until` to the start point's parser.
pub(crate) async fn replay_stream<S, E>(frames: S, start: Start, until: Micros) -> Result<vt100::Parser>
where
    S: futures::Stream<Item = std::result::Result<Frame, E>>,
    Error: From<E>,
{
    let Start { mut parser, mut skip, .. } = start;
    futures::pin_mut!(frames);
    while let Some(frame) = frames.next().await {
        let frame = frame.map_err(Error::from)?;
        if frame.t > until {
            break;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        apply_frame(&mut parser, &frame);
    }
    Ok(parser)
}
