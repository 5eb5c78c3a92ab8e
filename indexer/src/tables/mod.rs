//! The Parquet audit tables: `sessions`, `commands` and `events`, in the object store
//! under `tables/<table>/date=YYYY-MM-DD/<part>.parquet` (Hive partitioning by the UTC
//! date of each row's own time: a session's `start`, a command's or event's `time`), so
//! DuckDB (`read_parquet('…/tables/commands/*/*.parquet', hive_partitioning=true)`),
//! pyarrow (`pyarrow.dataset.dataset(…, partitioning="hive")`), Spark and Trino read them
//! as they are. Timestamps are `TIMESTAMP(MICROS, UTC)`; durations and offsets are integer
//! microseconds; every 5W field is a column of its own. The `date` partition column lives
//! in the directory name only.
//!
//! Parts: `gatehouse reindex` writes one `part-NNNNN.parquet` per partition and removes
//! every other part it did not write (so running it twice gives the same files); live
//! indexing adds `s-<session-id>.parquet` per finished session and `cp-<id>.parquet` per
//! batch of control-plane events, which the next reindex folds into `part-*` files.
//!
//! # `sessions` — one row per session
//! | column | type | |
//! |---|---|---|
//! | `session_id` | string | UUIDv7 |
//! | `start`, `end` | timestamp µs UTC | `end` null while live |
//! | `duration_us` | int64 | time of the last frame |
//! | `user`, `account`, `target`, `target_addr`, `source_addr` | string | who, where, from where |
//! | `source_port` | int32 | |
//! | `client`, `protocol`, `auth_method`, `mfa`, `channel`, `exec_command`, `term` | string | |
//! | `cols`, `rows` | int32 | initial terminal size |
//! | `title` | string | |
//! | `state` | string | `live`, `complete`, `interrupted`, `failed` |
//! | `end_reason` | string | |
//! | `exit_status` | int32 | |
//! | `bytes_in`, `bytes_out`, `frames`, `commands`, `events` | int64 | counts |
//! | `losses` | string | recording losses (best-effort spool), one per line |
//!
//! # `commands` — one row per executed command line
//! | column | type | |
//! |---|---|---|
//! | `session_id` | string | |
//! | `seq` | int32 | order within the session, from 0 |
//! | `time`, `end_time` | timestamp µs UTC | Enter; the next prompt |
//! | `offset_us` | int64 | µs since session start: where a player seeks |
//! | `duration_us` | int64 | |
//! | `command` | string | continuation lines joined by `\n` |
//! | `kind` | string | `shell` or `program-input` |
//! | `cwd` | string | where the prompt shows it |
//! | `exit_code` | int32 | where known |
//! | `output_excerpt` | string | first lines of output |
//! | `user`, `account`, `target`, `source_addr`, `client` | string | the session's 5W fields |
//!
//! # `events` — audit events
//! | column | type | |
//! |---|---|---|
//! | `time` | timestamp µs UTC | |
//! | `kind` | string | `auth`, `access`, `host_key` (control plane); `exec`, `exit`, `signal`, `command.blocked`, `file.*`, `tunnel.*`, `session.*`, `marker`… (recordings) |
//! | `source` | string | `recording` or `control-plane` |
//! | `session_id` | string | null for control-plane events |
//! | `offset_us` | int64 | µs since session start (recording events) |
//! | `user`, `account`, `target`, `source_addr`, `client`, `auth_method`, `mfa` | string | 5W |
//! | `outcome` | string | `success`, `failure`, `partial`, `locked`, `allowed`, `denied`… |
//! | `detail` | string | reason or description |
//! | `path` | string | file transfers |
//! | `bytes` | int64 | transfers |
//! | `data` | string | the event's full fields, JSON |

mod rows;
mod schema;
mod store;

pub use rows::{CommandRow, EventRow, SessionRow};
pub use schema::{TABLES_VERSION, commands_schema, events_schema, sessions_schema};
pub use store::{TablesRebuild, TablesReport, write_control_plane_events, write_session_tables};

/// One of the three tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// `sessions`.
    Sessions,
    /// `commands`.
    Commands,
    /// `events`.
    Events,
}

impl Table {
    /// The table's directory name under `tables/`.
    pub fn name(self) -> &'static str {
        match self {
            Table::Sessions => "sessions",
            Table::Commands => "commands",
            Table::Events => "events",
        }
    }
}
