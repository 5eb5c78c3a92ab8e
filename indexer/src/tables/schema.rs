//! The Arrow schemas of the three audit tables. Column names and types are a contract
//! (documented in the crate docs and the README): add columns at the end, never rename or
//! retype one; bump [`TABLES_VERSION`] (stored in each file's metadata) when changing.

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the table layout, written into each Parquet file's key-value metadata as
/// `gatehouse.tables.version`.
pub const TABLES_VERSION: &str = "1";

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn s(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

/// `sessions`: one row per session.
pub fn sessions_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            s("session_id", false),
            Field::new("start", ts(), false),
            Field::new("end", ts(), true),
            Field::new("duration_us", DataType::Int64, false),
            s("user", true),
            s("account", true),
            s("target", true),
            s("target_addr", true),
            s("source_addr", true),
            Field::new("source_port", DataType::Int32, true),
            s("client", true),
            s("protocol", true),
            s("auth_method", true),
            s("mfa", true),
            s("channel", true),
            s("exec_command", true),
            s("term", true),
            Field::new("cols", DataType::Int32, true),
            Field::new("rows", DataType::Int32, true),
            s("title", true),
            s("state", false),
            s("end_reason", true),
            Field::new("exit_status", DataType::Int32, true),
            Field::new("bytes_in", DataType::Int64, false),
            Field::new("bytes_out", DataType::Int64, false),
            Field::new("frames", DataType::Int64, false),
            Field::new("commands", DataType::Int64, false),
            Field::new("events", DataType::Int64, false),
            s("losses", true),
        ]))
    });
    SCHEMA.clone()
}

/// `commands`: one row per executed command line.
pub fn commands_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            s("session_id", false),
            Field::new("seq", DataType::Int32, false),
            Field::new("time", ts(), false),
            Field::new("end_time", ts(), true),
            Field::new("offset_us", DataType::Int64, false),
            Field::new("duration_us", DataType::Int64, true),
            s("command", false),
            s("kind", false),
            s("cwd", true),
            Field::new("exit_code", DataType::Int32, true),
            s("output_excerpt", true),
            s("user", true),
            s("account", true),
            s("target", true),
            s("source_addr", true),
            s("client", true),
        ]))
    });
    SCHEMA.clone()
}

/// `events`: audit events, from recordings and from the control plane.
pub fn events_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new("time", ts(), false),
            s("kind", false),
            s("source", false),
            s("session_id", true),
            Field::new("offset_us", DataType::Int64, true),
            s("user", true),
            s("account", true),
            s("target", true),
            s("source_addr", true),
            s("client", true),
            s("auth_method", true),
            s("mfa", true),
            s("outcome", true),
            s("detail", true),
            s("path", true),
            Field::new("bytes", DataType::Int64, true),
            s("data", true),
        ]))
    });
    SCHEMA.clone()
}
