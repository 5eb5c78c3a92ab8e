use gatehouse_fixtures::terminal::{Rng, realistic_session};
use gatehouse_recorder::{Frame, Manifest, SessionMeta};
use uuid::Uuid;

use super::capture::{capture, restore, same};
use super::*;
use crate::pipeline::SessionIndexer;
use crate::vtstate::VtTail;

fn manifest(cols: u16, rows: u16) -> Manifest {
    let meta = SessionMeta { cols: Some(cols), rows: Some(rows), ..Default::default() };
    Manifest::new(Uuid::now_v7(), meta, time::OffsetDateTime::now_utc())
}

/// Replays `frames` like `Storage::frames(manifest, from)` would serve them.
fn seek(manifest: &Manifest, frames: &[Frame], keyframes: &[Keyframe], t: Micros) -> vt100::Parser {
    let start = super::start_point(manifest, keyframes, t);
    let from = start.from;
    let stream = futures::stream::iter(frames.iter().filter(|f| f.t >= from).cloned().map(Ok::<_, Error>));
    futures::executor::block_on(super::replay_stream(stream, start, t)).expect("replay")
}

fn full_replay(manifest: &Manifest, frames: &[Frame], t: Micros) -> vt100::Parser {
    seek(manifest, frames, &[], t)
}

#[test]
fn capture_rebuilds_the_exact_screen_at_frame_boundaries() {
    let w = realistic_session(7, 300_000);
    let mut parser = new_parser(w.rows, w.cols);
    let mut tail = VtTail::default();
    let (mut tried, mut taken, mut in_alt, mut in_region) = (0, 0, 0, 0);
    for (i, frame) in w.frames.iter().enumerate() {
        apply_frame(&mut parser, frame);
        if let gatehouse_recorder::FrameData::Output(b) = &frame.data {
            tail.advance(b);
        }
        if i % 13 != 0 || !tail.at_ground() {
            continue;
        }
        tried += 1;
        let Some(state) = capture(parser.screen()) else { continue };
        taken += 1;
        let (rows, cols) = parser.screen().size();
        let rebuilt = restore(rows.get(), cols.get(), &state);
        assert!(same(rebuilt.screen(), parser.screen()), "frame {i}");
        in_alt += usize::from(parser.screen().alternate_screen());
        in_region += usize::from(sets_a_region(&state, rows.get()));
    }
    assert!(tried > 100, "{tried} boundaries tried");
    assert!(taken * 100 >= tried * 95, "only {taken} of {tried} boundaries captured");
    assert!(in_alt > 5 && in_region > 2, "full-screen states covered: {in_alt} alt, {in_region} with a region");
}

/// Whether captured state bytes set a scroll region smaller than the screen (a `CSI t;b r`
/// other than `1;rows`).
fn sets_a_region(state: &[u8], rows: u16) -> bool {
    let full = format!("1;{rows}");
    String::from_utf8_lossy(state).split("\x1b[").filter_map(|s| s.split_once('r')).any(|(params, _)| {
        params.split_once(';').is_some_and(|(t, b)| t.parse::<u16>().is_ok() && b.parse::<u16>().is_ok())
            && params != full
    })
}

#[test]
fn seeking_from_keyframes_equals_full_replay_at_random_times() {
    let w = realistic_session(11, 2_600_000);
    let m = manifest(w.cols, w.rows);
    let mut pipeline = SessionIndexer::new(w.cols, w.rows);
    for frame in &w.frames {
        pipeline.push(frame);
    }
    let out = pipeline.finish();
    let keyframes = out.keyframes;
    assert!(keyframes.len() >= 4, "{} keyframes", keyframes.len());
    // The stored file round-trips.
    let decoded = decode_keyframes(&encode_keyframes(m.id, &keyframes), m.id, "test").unwrap();
    assert_eq!(decoded, keyframes);

    let end = w.frames.last().unwrap().t;
    let mut rng = Rng::new(3);
    let mut times: Vec<Micros> = (0..60).map(|_| rng.below(end + 1)).collect();
    // Exactly at keyframe times (frames sharing that time) and just after them, too.
    times.extend(keyframes.iter().take(10).flat_map(|k| [k.t, k.t + 1]));
    let mut from_keyframe = 0;
    for t in times {
        let fast = seek(&m, &w.frames, &decoded, t);
        let slow = full_replay(&m, &w.frames, t);
        assert_eq!(fast.screen().state_formatted(), slow.screen().state_formatted(), "screen at t={t}");
        assert!(same(fast.screen(), slow.screen()), "hidden state at t={t}");
        from_keyframe += usize::from(keyframes.first().is_some_and(|k| k.t <= t));
    }
    assert!(from_keyframe > 40, "only {from_keyframe} seeks started from a keyframe");
}

#[test]
fn keyframes_follow_the_output_volume() {
    let w = realistic_session(5, 3_000_000);
    let mut pipeline = SessionIndexer::new(w.cols, w.rows);
    for frame in &w.frames {
        pipeline.push(frame);
    }
    let keyframes = pipeline.finish().keyframes;
    // Output bytes before each frame index.
    let mut before = vec![0u64];
    for f in &w.frames {
        let n = match &f.data {
            gatehouse_recorder::FrameData::Output(b) => b.len() as u64,
            _ => 0,
        };
        before.push(before.last().unwrap() + n);
    }
    let total = *before.last().unwrap();
    let n = keyframes.len() as u64;
    assert!((total / (KEYFRAME_BYTES + 32 * 1024)..=total / KEYFRAME_BYTES).contains(&n), "{n} keyframes for {total} bytes");
    let mut last = (0u64, 0u64); // (frame index, t)
    for k in &keyframes {
        let bytes = before[k.frame_index as usize] - before[last.0 as usize];
        assert!(k.frame_index > last.0 && k.t >= last.1);
        // A keyframe waits for a frame boundary outside any escape sequence: a few frames.
        assert!((KEYFRAME_BYTES..KEYFRAME_BYTES + 32 * 1024).contains(&bytes), "{bytes} bytes between keyframes");
        last = (k.frame_index, k.t);
    }
}

#[test]
fn corrupt_keyframe_files_are_named_errors() {
    let id = Uuid::now_v7();
    let k = Keyframe { t: 5, frame_index: 9, skip: 1, rows: 24, cols: 80, state: b"\x1b[Hhello".to_vec() };
    let good = encode_keyframes(id, std::slice::from_ref(&k));
    assert_eq!(decode_keyframes(&good, id, "kf").unwrap(), vec![k]);

    let err = decode_keyframes(b"nope", id, "keyframes/x.kf").unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Corrupt);
    assert!(err.to_string().contains("keyframes/x.kf"), "{err}");

    let err = decode_keyframes(&good, Uuid::now_v7(), "kf").unwrap_err();
    assert!(err.to_string().contains("another session"), "{err}");

    let mut flipped = good.clone();
    let last = flipped.len() - 6;
    flipped[last] ^= 0x40;
    assert_eq!(decode_keyframes(&flipped, id, "kf").unwrap_err().kind(), crate::ErrorKind::Corrupt);
}

