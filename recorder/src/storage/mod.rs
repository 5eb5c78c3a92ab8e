//! [`Storage`]: an object store plus the DESIGN.md layout. Writing goes through the
//! recorder's uploader; reading (listing, frames, verification) is open to everyone.

mod read;
mod url;

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::layout;
use crate::manifest::{Manifest, RecordingState};

pub use read::{Problem, VerifyReport};

/// Where recordings live: any `object_store` backend, laid out as DESIGN.md says.
/// Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    label: Arc<str>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("store", &self.label).finish()
    }
}

/// Which sessions [`Storage::list_sessions`] returns. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// Sessions that started at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Sessions that started before this time.
    pub until: Option<OffsetDateTime>,
    /// Sessions of this gatehouse user.
    pub user: Option<String>,
    /// Sessions to this target.
    pub target: Option<String>,
    /// Sessions as this account on the target.
    pub account: Option<String>,
    /// Sessions whose recording is in this state.
    pub state: Option<RecordingState>,
}

impl SessionFilter {
    fn matches(&self, m: &Manifest) -> bool {
        self.since.is_none_or(|t| m.started_at >= t)
            && self.until.is_none_or(|t| m.started_at < t)
            && self.user.as_ref().is_none_or(|u| m.meta.user.as_ref() == Some(u))
            && self.target.as_ref().is_none_or(|t| m.meta.target.as_ref() == Some(t))
            && self.account.as_ref().is_none_or(|a| m.meta.account.as_ref() == Some(a))
            && self.state.is_none_or(|s| m.state == s)
    }
}

/// How many manifests [`Storage::list_sessions`] fetches at once.
const LIST_CONCURRENCY: usize = 16;

impl Storage {
    /// Opens the store a URL names: `file:///abs/path`, `s3://bucket/prefix`, `memory://`
    /// (see the crate docs for S3 settings).
    pub fn from_url(url: &str) -> Result<Storage> {
        Ok(Storage { store: url::open(url)?, label: redact(url).into() })
    }

    /// Wraps an existing object store.
    pub fn from_object_store(store: Arc<dyn ObjectStore>) -> Storage {
        let label = store.to_string().into();
        Storage { store, label }
    }

    /// The underlying store (for `tables/`, which the indexer writes).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// A printable name for this store (URL without query parameters).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A session's manifest.
    pub async fn manifest(&self, id: Uuid) -> Result<Manifest> {
        let path = layout::manifest_path(id)?;
        let bytes = self.get(&path).await.map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound(format!("session {id}")),
            other => other,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(format!("manifest {path}"), e))
    }

    /// Sessions matching `filter`, oldest first. A manifest that cannot be parsed is
    /// skipped with a warning (`verify --all` reports it).
    pub async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<Manifest>> {
        let ids = self.session_ids(filter.since).await?;
        let ids = ids.into_iter().filter(|id| {
            // The id carries the start time (ms): skip fetching what cannot match.
            let Ok(t) = layout::id_time(*id) else { return false };
            filter.since.is_none_or(|s| t + time::Duration::milliseconds(1) > s)
                && filter.until.is_none_or(|u| t < u)
        });
        let mut out: Vec<Manifest> = futures::stream::iter(ids)
            .map(|id| async move { (id, self.manifest(id).await) })
            .buffer_unordered(LIST_CONCURRENCY)
            .filter_map(|(id, res)| async move {
                match res {
                    Ok(m) => Some(Ok(m)),
                    Err(e) if e.kind() == crate::ErrorKind::Unavailable => Some(Err(e)),
                    Err(e) => {
                        tracing::warn!(%id, "skipping session: {e}");
                        None
                    }
                }
            })
            .try_collect()
            .await?;
        out.retain(|m| filter.matches(m));
        out.sort_by_key(|m| (m.started_at, m.id));
        Ok(out)
    }

    /// Ids of every session with a manifest, from the listing alone (no manifest is read),
    /// optionally only those whose day is not before `since`'s.
    pub async fn session_ids(&self, since: Option<OffsetDateTime>) -> Result<Vec<Uuid>> {
        let root = Path::from(layout::SESSIONS);
        let listing = match since {
            // Paths sort by day, so listing from since's day prunes everything older.
            Some(t) => self.store.list_with_offset(Some(&root), &Path::from(layout::day_prefix(t))),
            None => self.store.list(Some(&root)),
        };
        let mut ids: Vec<Uuid> = listing
            .map_err(|e| Error::store(root.as_ref(), e))
            .try_filter_map(|meta| async move { Ok(layout::manifest_id(&meta.location)) })
            .try_collect()
            .await?;
        ids.sort();
        Ok(ids)
    }

    /// The one session whose id is `text` or starts with it.
    pub async fn resolve(&self, text: &str) -> Result<Uuid> {
        if let Ok(id) = text.parse::<Uuid>() {
            return Ok(id);
        }
        let needle = text.to_ascii_lowercase();
        if needle.is_empty() {
            return Err(Error::invalid("session", "empty id"));
        }
        let matches: Vec<Uuid> =
            self.session_ids(None).await?.into_iter().filter(|id| id.to_string().starts_with(&needle)).collect();
        match matches.as_slice() {
            [id] => Ok(*id),
            [] => Err(Error::NotFound(format!("session {text}"))),
            many => Err(Error::invalid(
                format!("session {text}"),
                format!("prefix matches {} sessions; type more of the id", many.len()),
            )),
        }
    }

    pub(crate) async fn put_manifest(&self, manifest: &Manifest) -> Result<()> {
        let path = layout::manifest_path(manifest.id)?;
        let json = serde_json::to_vec_pretty(manifest).expect("a manifest always serializes");
        self.put(&path, json.into()).await
    }

    pub(crate) async fn put(&self, path: &Path, bytes: Bytes) -> Result<()> {
        self.store.put(path, PutPayload::from_bytes(bytes)).await.map_err(|e| Error::store(path.as_ref(), e))?;
        Ok(())
    }

    pub(crate) async fn get(&self, path: &Path) -> Result<Bytes> {
        let res = self.store.get(path).await.map_err(|e| Error::store(path.as_ref(), e))?;
        res.bytes().await.map_err(|e| Error::store(path.as_ref(), e))
    }
}

/// A URL without its query string (which may hold credentials).
fn redact(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}
