//! asciicast v2 wire details: `{"version": 2, "width", "height", "timestamp", "title",
//! "command", "env"}`; events carry absolute times.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::Header;

/// The header of a v2 file.
pub(super) fn header(value: Value) -> Result<Header, String> {
    let obj = value.as_object().ok_or("header is not a JSON object")?;
    let size = |key: &str| {
        obj.get(key)
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| format!("header needs \"{key}\" as a terminal size (0-65535)"))
    };
    let env = common::env(obj);
    Ok(Header {
        version: 2,
        cols: size("width")?,
        rows: size("height")?,
        timestamp: common::timestamp(obj)?,
        title: common::text(obj, "title"),
        command: common::text(obj, "command"),
        term: env.get("TERM").cloned(),
        env,
    })
}

/// The v2 header line.
pub(super) fn encode_header(header: &Header) -> String {
    #[derive(Serialize)]
    struct V2<'a> {
        version: u8,
        width: u16,
        height: u16,
        #[serde(flatten)]
        common: common::Optional<'a>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
    }
    let mut env = header.env.clone();
    if let Some(term) = &header.term {
        env.entry("TERM".into()).or_insert_with(|| term.clone());
    }
    let line = V2 { version: 2, width: header.cols, height: header.rows, common: common::Optional::of(header), env };
    format!("{}\n", serde_json::to_string(&line).expect("header serializes"))
}

/// Header fields v2 and v3 share.
pub(super) mod common {
    use std::collections::BTreeMap;

    use serde::Serialize;
    use serde_json::{Map, Value};
    use time::OffsetDateTime;

    use crate::asciicast::Header;

    pub(in crate::asciicast) fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
        obj.get(key).and_then(Value::as_str).map(str::to_string)
    }

    pub(in crate::asciicast) fn env(obj: &Map<String, Value>) -> BTreeMap<String, String> {
        // Recorders write `null` for unset variables; those carry nothing.
        obj.get("env")
            .and_then(Value::as_object)
            .map(|env| {
                env.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect()
            })
            .unwrap_or_default()
    }

    pub(in crate::asciicast) fn timestamp(obj: &Map<String, Value>) -> Result<Option<OffsetDateTime>, String> {
        let Some(value) = obj.get("timestamp").filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        // The spec says integer; some writers emit a float. Sub-second precision of the
        // wall-clock start does not matter for a recording's metadata.
        let secs = value
            .as_i64()
            .or_else(|| value.as_f64().map(|f| f as i64))
            .ok_or_else(|| format!("header \"timestamp\" {value} is not a Unix time"))?;
        OffsetDateTime::from_unix_timestamp(secs)
            .map(Some)
            .map_err(|e| format!("header \"timestamp\" {secs}: {e}"))
    }

    /// Optional header fields, in the order asciinema writes them.
    #[derive(Serialize)]
    pub(in crate::asciicast) struct Optional<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        timestamp: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        command: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<&'a str>,
    }

    impl<'a> Optional<'a> {
        pub(in crate::asciicast) fn of(header: &'a Header) -> Self {
            Optional {
                timestamp: header.timestamp.map(OffsetDateTime::unix_timestamp),
                command: header.command.as_deref(),
                title: header.title.as_deref(),
            }
        }
    }
}
