//! Storage URLs: `file:///abs/path`, `memory://`, `s3://bucket[/prefix][?key=value&...]`.
//!
//! S3 settings come from the usual AWS environment variables (`AWS_ENDPOINT_URL`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`, ...) and
//! can be overridden per URL with query parameters named like object_store's S3 keys
//! (`endpoint`, `region`, `access_key_id`, `secret_access_key`, `allow_http`,
//! `virtual_hosted_style_request`). Plain-HTTP endpoints on a loopback address are
//! allowed without `allow_http`: that is a local MinIO/moto, not a network hop.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use crate::error::{Error, Result};

/// Opens the object store a URL names.
pub(crate) fn open(url: &str) -> Result<Arc<dyn ObjectStore>> {
    let bad = |detail: &str| Error::invalid(format!("storage URL {url:?}"), detail);
    if let Some(rest) = url.strip_prefix("memory:") {
        if !rest.trim_start_matches('/').is_empty() {
            return Err(bad("memory:// takes no path"));
        }
        return Ok(Arc::new(InMemory::new()));
    }
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(bad("file:// needs an absolute path, as in file:///var/lib/gatehouse/store"));
        }
        let path = percent_decode(path);
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        let fs = LocalFileSystem::new_with_prefix(&path).map_err(|e| bad(&e.to_string()))?;
        return Ok(Arc::new(fs));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        if bucket.is_empty() {
            return Err(bad("s3:// needs a bucket, as in s3://bucket/prefix"));
        }
        let s3 = s3_builder(bucket, query).map_err(|e| bad(&e))?.build().map_err(|e| bad(&e.to_string()))?;
        let prefix = prefix.trim_matches('/');
        return Ok(if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix)) });
    }
    Err(bad("expected file:///path, s3://bucket/prefix or memory://"))
}

fn s3_builder(bucket: &str, query: &str) -> Result<AmazonS3Builder, String> {
    // The uploader retries forever with its own backoff; object_store's internal retries
    // (10 tries over up to 3 minutes by default) would only hide an outage from it.
    let retry = RetryConfig {
        backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(2), base: 2.0 },
        max_retries: 2,
        retry_timeout: Duration::from_secs(10),
    };
    let client = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(60));
    let mut builder = AmazonS3Builder::new().with_client_options(client).with_retry(retry).with_region("us-east-1");
    let env = std::env::vars().filter(|(k, _)| k.starts_with("AWS_")).map(|(k, v)| (k.to_ascii_lowercase(), v));
    for (key, value) in env {
        if let Ok(key) = key.parse::<AmazonS3ConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, "true"));
        let key: AmazonS3ConfigKey = key.parse().map_err(|_| format!("unknown S3 option {key:?}"))?;
        builder = builder.with_config(key, percent_decode(value));
    }
    if builder.get_config_value(&AmazonS3ConfigKey::Endpoint).is_some_and(|e| is_loopback_http(&e)) {
        builder = builder.with_allow_http(true);
    }
    Ok(builder.with_bucket_name(bucket))
}

/// `http://127.0.0.1:9000`, `http://localhost`, `http://[::1]:80`.
fn is_loopback_http(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else { return false };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_endpoints() {
        for yes in ["http://127.0.0.1:9000", "http://localhost:5000/", "http://[::1]:80", "http://127.9.9.9"] {
            assert!(is_loopback_http(yes), "{yes}");
        }
        for no in ["https://127.0.0.1", "http://10.0.0.1:9000", "http://example.com", "http://localhost.evil.com"] {
            assert!(!is_loopback_http(no), "{no}");
        }
    }

    #[test]
    fn bad_urls_say_what_is_expected() {
        for (url, needle) in [
            ("ftp://x", "expected file:///path"),
            ("file://relative/path", "absolute path"),
            ("s3://", "needs a bucket"),
            ("s3://b?no_such_option=1", "unknown S3 option"),
            ("memory://x", "no path"),
        ] {
            let err = open(url).err().unwrap_or_else(|| panic!("{url} opened"));
            assert_eq!(err.kind(), crate::ErrorKind::Invalid);
            assert!(err.to_string().contains(needle), "{url}: {err}");
        }
        assert_eq!(percent_decode("a%20b%2Fc%"), "a b/c%");
    }
}
