//! Where things live in the object store (DESIGN.md's layout):
//! `sessions/YYYY/MM/DD/<session-id>/manifest.json` and `.../<seq>.seg`, the date being
//! the UTC day of the session's start, which its UUIDv7 id carries.

use object_store::path::Path;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Error, Result};

/// Root of all recordings.
pub(crate) const SESSIONS: &str = "sessions";
/// The manifest's file name.
pub(crate) const MANIFEST: &str = "manifest.json";

/// The start time a UUIDv7 carries (millisecond precision).
pub(crate) fn id_time(id: Uuid) -> Result<OffsetDateTime> {
    let ts = id
        .get_timestamp()
        .ok_or_else(|| Error::invalid("session id", format!("{id} is not a UUIDv7")))?;
    let (secs, nanos) = ts.to_unix();
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
        .map_err(|e| Error::invalid("session id", format!("{id}: {e}")))
}

/// A UUIDv7 for a session starting at `at`.
pub(crate) fn new_id(at: OffsetDateTime) -> Uuid {
    let nanos = at.unix_timestamp_nanos().max(0);
    let secs = (nanos / 1_000_000_000) as u64;
    let sub = (nanos % 1_000_000_000) as u32;
    Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, sub))
}

/// `sessions/YYYY/MM/DD` for a UTC day.
pub(crate) fn day_prefix(at: OffsetDateTime) -> String {
    let d = at.to_offset(time::UtcOffset::UTC).date();
    format!("{SESSIONS}/{:04}/{:02}/{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The session's directory.
pub(crate) fn session_dir(id: Uuid) -> Result<String> {
    Ok(format!("{}/{id}", day_prefix(id_time(id)?)))
}

/// The manifest object of a session.
pub(crate) fn manifest_path(id: Uuid) -> Result<Path> {
    Ok(Path::from(format!("{}/{MANIFEST}", session_dir(id)?)))
}

/// Segment `seq` of a session. Zero-padded so a listing sorts in sequence order.
pub(crate) fn segment_path(id: Uuid, seq: u64) -> Result<Path> {
    Ok(Path::from(format!("{}/{seq:08}.seg", session_dir(id)?)))
}

/// The session id of a `.../<id>/manifest.json` path, if it is one.
pub(crate) fn manifest_id(path: &Path) -> Option<Uuid> {
    let mut parts: Vec<_> = path.parts().collect();
    if parts.pop()?.as_ref() != MANIFEST {
        return None;
    }
    parts.pop()?.as_ref().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_design_layout() {
        let at = time::macros::datetime!(2024-03-09 23:59:58.5 UTC);
        let id = new_id(at);
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id_time(id).unwrap().unix_timestamp(), at.unix_timestamp());
        let m = manifest_path(id).unwrap();
        assert_eq!(m.as_ref(), format!("sessions/2024/03/09/{id}/manifest.json"));
        assert_eq!(manifest_id(&m), Some(id));
        assert_eq!(segment_path(id, 12).unwrap().as_ref(), format!("sessions/2024/03/09/{id}/00000012.seg"));
        assert_eq!(manifest_id(&segment_path(id, 1).unwrap()), None);
        assert_eq!(session_dir(Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef)).unwrap_err().kind(), crate::ErrorKind::Invalid);
    }
}
