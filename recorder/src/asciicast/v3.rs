//! asciicast v3 wire details: `{"version": 3, "term": {"cols", "rows", "type"},
//! "timestamp", "title", "command", "env"}`; events carry intervals since the previous
//! event; `#` lines are comments; `"x"` is the exit status.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::Header;
use super::v2::common;

/// The header of a v3 file.
pub(super) fn header(value: Value) -> Result<Header, String> {
    let obj = value.as_object().ok_or("header is not a JSON object")?;
    let term = obj.get("term").and_then(Value::as_object).ok_or("header needs a \"term\" object")?;
    let size = |key: &str| {
        term.get(key)
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| format!("header needs \"term.{key}\" as a terminal size (0-65535)"))
    };
    let env = common::env(obj);
    Ok(Header {
        version: 3,
        cols: size("cols")?,
        rows: size("rows")?,
        timestamp: common::timestamp(obj)?,
        title: common::text(obj, "title"),
        command: common::text(obj, "command"),
        term: common::text(term, "type").or_else(|| env.get("TERM").cloned()),
        env,
    })
}

/// The v3 header line.
pub(super) fn encode_header(header: &Header) -> String {
    #[derive(Serialize)]
    struct Term<'a> {
        cols: u16,
        rows: u16,
        #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
        kind: Option<&'a str>,
    }
    #[derive(Serialize)]
    struct V3<'a> {
        version: u8,
        term: Term<'a>,
        #[serde(flatten)]
        common: common::Optional<'a>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        env: &'a BTreeMap<String, String>,
    }
    let term = Term { cols: header.cols, rows: header.rows, kind: header.term.as_deref() };
    let line = V3 { version: 3, term, common: common::Optional::of(header), env: &header.env };
    format!("{}\n", serde_json::to_string(&line).expect("header serializes"))
}
