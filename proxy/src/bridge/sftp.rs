//! Decodes the SFTP (v3, what OpenSSH speaks) packets of an `sftp` subsystem channel
//! into file-transfer events, so an auditor sees which files moved: `file.open`,
//! `file.read` / `file.write` (bytes, summed per open file and reported at close),
//! `file.remove`, `file.rename`, `file.mkdir`, `file.rmdir`.
//!
//! Streaming: packets arrive split across channel data at any point. Only each packet's
//! first [`PREFIX`] bytes are kept (enough for every field but the data of READ replies
//! and WRITE requests), the rest is skipped, so decoding costs no copy of file data.
//! Known limits: file names that are not UTF-8 are shown lossily; requests the server
//! failed are reported with `ok: false` where the reply says so (open, remove, rename,
//! mkdir, rmdir), while WRITE byte counts are those requested.

use std::collections::HashMap;

use serde_json::{Value, json};

/// Bytes of each packet kept for decoding.
const PREFIX: usize = 1024;

const FXP_OPEN: u8 = 3;
const FXP_CLOSE: u8 = 4;
const FXP_READ: u8 = 5;
const FXP_WRITE: u8 = 6;
const FXP_OPENDIR: u8 = 11;
const FXP_REMOVE: u8 = 13;
const FXP_MKDIR: u8 = 14;
const FXP_RMDIR: u8 = 15;
const FXP_RENAME: u8 = 18;
const FXP_EXTENDED: u8 = 200;
const FXP_STATUS: u8 = 101;
const FXP_HANDLE: u8 = 102;
const FXP_DATA: u8 = 103;

/// Splits a byte stream into SFTP packet prefixes.
#[derive(Default)]
struct Framer {
    len_buf: Vec<u8>,
    prefix: Vec<u8>,
    /// Bytes of the current packet still to come (kept in `prefix` up to PREFIX).
    remaining: usize,
    total: usize,
}

impl Framer {
    /// Feeds bytes; calls `f(prefix, total_len)` for each complete packet.
    fn feed(&mut self, mut data: &[u8], mut f: impl FnMut(&[u8], usize)) {
        while !data.is_empty() {
            if self.remaining == 0 {
                let need = 4 - self.len_buf.len();
                let take = need.min(data.len());
                self.len_buf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.len_buf.len() == 4 {
                    let len = u32::from_be_bytes(self.len_buf[..4].try_into().expect("4 bytes")) as usize;
                    self.len_buf.clear();
                    self.prefix.clear();
                    self.total = len;
                    self.remaining = len;
                    if len == 0 {
                        f(&[], 0);
                    }
                }
                continue;
            }
            let take = self.remaining.min(data.len());
            let keep = (PREFIX.saturating_sub(self.prefix.len())).min(take);
            self.prefix.extend_from_slice(&data[..keep]);
            self.remaining -= take;
            data = &data[take..];
            if self.remaining == 0 {
                f(&self.prefix, self.total);
            }
        }
    }
}

/// A cursor over a packet prefix.
struct Rd<'a>(&'a [u8]);

impl<'a> Rd<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn u32(&mut self) -> Option<u32> {
        let v = u32::from_be_bytes(self.0.get(..4)?.try_into().ok()?);
        self.0 = &self.0[4..];
        Some(v)
    }
    fn u64(&mut self) -> Option<u64> {
        let v = u64::from_be_bytes(self.0.get(..8)?.try_into().ok()?);
        self.0 = &self.0[8..];
        Some(v)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        let v = self.0.get(..n)?;
        self.0 = &self.0[n..];
        Some(v)
    }
    fn string(&mut self) -> Option<String> {
        self.bytes().map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// What a request is waiting for in its reply.
enum Pending {
    Open { path: String, flags: u32, dir: bool },
    Simple { kind: &'static str, data: Value },
    Read { handle: Vec<u8> },
    Close { handle: Vec<u8> },
}

struct OpenFile {
    path: String,
    read: u64,
    written: u64,
}

/// The decoder for one sftp channel: feed it both directions, take the events.
#[derive(Default)]
pub(crate) struct SftpDecoder {
    up: Framer,
    down: Framer,
    pending: HashMap<u32, Pending>,
    files: HashMap<Vec<u8>, OpenFile>,
    events: Vec<(&'static str, Value)>,
}

impl SftpDecoder {
    /// Bytes the client sent (requests).
    pub(crate) fn client(&mut self, data: &[u8]) -> Vec<(&'static str, Value)> {
        let mut up = std::mem::take(&mut self.up);
        up.feed(data, |p, total| self.request(p, total));
        self.up = up;
        std::mem::take(&mut self.events)
    }

    /// Bytes the server sent (replies).
    pub(crate) fn server(&mut self, data: &[u8]) -> Vec<(&'static str, Value)> {
        let mut down = std::mem::take(&mut self.down);
        down.feed(data, |p, total| self.reply(p, total));
        self.down = down;
        std::mem::take(&mut self.events)
    }

    fn request(&mut self, p: &[u8], _total: usize) {
        let mut r = Rd(p);
        let (Some(ty), Some(id)) = (r.u8(), r.u32()) else { return };
        let pending = match ty {
            FXP_OPEN => {
                let (Some(path), Some(flags)) = (r.string(), r.u32()) else { return };
                Pending::Open { path, flags, dir: false }
            }
            FXP_OPENDIR => {
                let Some(path) = r.string() else { return };
                Pending::Open { path, flags: 0, dir: true }
            }
            FXP_READ => {
                let Some(handle) = r.bytes() else { return };
                Pending::Read { handle: handle.to_vec() }
            }
            FXP_WRITE => {
                let (Some(handle), Some(_off), Some(len)) = (r.bytes(), r.u64(), r.u32()) else { return };
                if let Some(f) = self.files.get_mut(handle) {
                    f.written += len as u64;
                }
                return;
            }
            FXP_CLOSE => {
                let Some(handle) = r.bytes() else { return };
                Pending::Close { handle: handle.to_vec() }
            }
            FXP_REMOVE => simple("file.remove", r.string().map(|p| json!({ "path": p }))),
            FXP_MKDIR => simple("file.mkdir", r.string().map(|p| json!({ "path": p }))),
            FXP_RMDIR => simple("file.rmdir", r.string().map(|p| json!({ "path": p }))),
            FXP_RENAME => simple("file.rename", rename(&mut r)),
            FXP_EXTENDED => match r.string().as_deref() {
                Some("posix-rename@openssh.com") => simple("file.rename", rename(&mut r)),
                _ => return,
            },
            _ => return,
        };
        self.pending.insert(id, pending);
    }

    fn reply(&mut self, p: &[u8], total: usize) {
        let mut r = Rd(p);
        let (Some(ty), Some(id)) = (r.u8(), r.u32()) else { return };
        let Some(pending) = self.pending.remove(&id) else { return };
        match (pending, ty) {
            (Pending::Open { path, flags, dir }, FXP_HANDLE) => {
                let Some(handle) = r.bytes() else { return };
                if !dir {
                    self.events.push(("file.open", json!({ "path": path, "mode": open_mode(flags), "ok": true })));
                }
                self.files.insert(handle.to_vec(), OpenFile { path, read: 0, written: 0 });
            }
            (Pending::Open { path, flags, dir: false }, FXP_STATUS) => {
                let status = r.u32().unwrap_or(u32::MAX);
                self.events.push(("file.open", json!({ "path": path, "mode": open_mode(flags), "ok": false, "status": status })));
            }
            (Pending::Read { handle }, FXP_DATA) => {
                // type(1) + id(4) + length(4) precede the data.
                let n = r.u32().map(|n| n as u64).unwrap_or(total.saturating_sub(9) as u64);
                if let Some(f) = self.files.get_mut(&handle) {
                    f.read += n;
                }
            }
            (Pending::Close { handle }, _) => {
                if let Some(f) = self.files.remove(&handle) {
                    if f.read > 0 {
                        self.events.push(("file.read", json!({ "path": f.path, "bytes": f.read })));
                    }
                    if f.written > 0 {
                        self.events.push(("file.write", json!({ "path": f.path, "bytes": f.written })));
                    }
                }
            }
            (Pending::Simple { kind, mut data }, FXP_STATUS) => {
                let status = r.u32().unwrap_or(u32::MAX);
                data["ok"] = json!(status == 0);
                if status != 0 {
                    data["status"] = json!(status);
                }
                self.events.push((kind, data));
            }
            _ => {}
        }
    }
}

fn simple(kind: &'static str, data: Option<Value>) -> Pending {
    Pending::Simple { kind, data: data.unwrap_or_else(|| json!({})) }
}

fn rename(r: &mut Rd<'_>) -> Option<Value> {
    let from = r.string()?;
    let to = r.string()?;
    Some(json!({ "from": from, "to": to }))
}

fn open_mode(flags: u32) -> &'static str {
    // SSH_FXF_READ = 1, SSH_FXF_WRITE = 2.
    match (flags & 1 != 0, flags & 2 != 0) {
        (true, true) => "read-write",
        (false, true) => "write",
        _ => "read",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(ty: u8, id: u32, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((1 + 4 + body.len()) as u32).to_be_bytes());
        v.push(ty);
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn s(b: &[u8]) -> Vec<u8> {
        let mut v = (b.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(b);
        v
    }

    /// Feeds a byte stream one byte at a time, the worst split.
    fn drip(d: &mut SftpDecoder, client: bool, bytes: &[u8]) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        for b in bytes {
            out.extend(if client { d.client(&[*b]) } else { d.server(&[*b]) });
        }
        out
    }

    #[test]
    fn upload_then_close_reports_path_and_bytes() {
        let mut d = SftpDecoder::default();
        let mut open = s(b"/tmp/up.bin");
        open.extend_from_slice(&(2u32 | 8 | 16).to_be_bytes());
        open.extend_from_slice(&0u32.to_be_bytes());
        assert!(drip(&mut d, true, &pkt(FXP_OPEN, 1, &open)).is_empty());
        let ev = drip(&mut d, false, &pkt(FXP_HANDLE, 1, &s(b"h1")));
        assert_eq!(ev[0].0, "file.open");
        assert_eq!(ev[0].1["path"], "/tmp/up.bin");
        assert_eq!(ev[0].1["mode"], "write");
        let data = vec![7u8; 5000];
        let mut w = s(b"h1");
        w.extend_from_slice(&0u64.to_be_bytes());
        w.extend_from_slice(&s(&data));
        let mut stream = pkt(FXP_WRITE, 2, &w);
        stream.extend(pkt(FXP_WRITE, 3, &w));
        stream.extend(pkt(FXP_CLOSE, 4, &s(b"h1")));
        assert!(d.client(&stream).is_empty());
        let mut status = 0u32.to_be_bytes().to_vec();
        status.extend(s(b""));
        let ev = d.server(&pkt(FXP_STATUS, 4, &status));
        assert_eq!(ev, vec![("file.write", json!({"path": "/tmp/up.bin", "bytes": 10000}))]);
    }

    #[test]
    fn download_counts_data_replies() {
        let mut d = SftpDecoder::default();
        let mut open = s(b"/etc/hosts");
        open.extend_from_slice(&1u32.to_be_bytes());
        open.extend_from_slice(&0u32.to_be_bytes());
        d.client(&pkt(FXP_OPEN, 9, &open));
        d.server(&pkt(FXP_HANDLE, 9, &s(b"hh")));
        let mut rd = s(b"hh");
        rd.extend_from_slice(&0u64.to_be_bytes());
        rd.extend_from_slice(&32768u32.to_be_bytes());
        d.client(&pkt(FXP_READ, 10, &rd));
        assert!(drip(&mut d, false, &pkt(FXP_DATA, 10, &s(&vec![1u8; 3000]))).is_empty());
        d.client(&pkt(FXP_CLOSE, 11, &s(b"hh")));
        let ev = d.server(&pkt(FXP_STATUS, 11, &[0, 0, 0, 0]));
        assert_eq!(ev, vec![("file.read", json!({"path": "/etc/hosts", "bytes": 3000}))]);
    }

    #[test]
    fn remove_rename_mkdir_with_status() {
        let mut d = SftpDecoder::default();
        d.client(&pkt(FXP_REMOVE, 1, &s(b"/a")));
        let mut rn = s(b"/b");
        rn.extend(s(b"/c"));
        d.client(&pkt(FXP_EXTENDED, 2, &[s(b"posix-rename@openssh.com"), rn].concat()));
        d.client(&pkt(FXP_MKDIR, 3, &[s(b"/d"), 0u32.to_be_bytes().to_vec()].concat()));
        let mut ev = d.server(&pkt(FXP_STATUS, 1, &2u32.to_be_bytes()));
        ev.extend(d.server(&pkt(FXP_STATUS, 2, &0u32.to_be_bytes())));
        ev.extend(d.server(&pkt(FXP_STATUS, 3, &0u32.to_be_bytes())));
        assert_eq!(ev[0], ("file.remove", json!({"path": "/a", "ok": false, "status": 2})));
        assert_eq!(ev[1], ("file.rename", json!({"from": "/b", "to": "/c", "ok": true})));
        assert_eq!(ev[2], ("file.mkdir", json!({"path": "/d", "ok": true})));
    }
}
