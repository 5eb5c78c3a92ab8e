//! The demo target's `sftp` subsystem (`russh-sftp`'s server side over the local file
//! system), so `scp` (SFTP mode, OpenSSH 9's default) and `sftp` work against the demo.
//!
//! It sees the file system exactly as the demo shell does: the same user (the one
//! gatehouse runs as), relative paths from the same home directory, no chroot. Known
//! limits: SFTP v3 only, no extensions (so no `posix-rename`, `statvfs`, `hardlink`),
//! no `symlink` (OpenSSH swaps its arguments; nothing in a demo needs it).

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Component, Path, PathBuf};

use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};
use russh::server::{Handle as SessionHandle, Msg};
use russh::{Channel, ChannelId, ChannelMsg};
use russh_sftp::server::StatusReply;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Most entries returned per READDIR reply (OpenSSH's sftp-server sends 100).
const DIR_BATCH: usize = 100;

/// Runs an SFTP server on `ch` until the client's EOF or close, then ends the channel the
/// way sshd does (exit status 0, EOF, close: OpenSSH's ssh exits 255 without a status).
pub(super) fn serve(ch: Channel<Msg>, home: PathBuf, session: SessionHandle, id: ChannelId) {
    // The server runs on one end of an in-memory pipe; this task carries the other end
    // to the channel, so it sees when the server is done.
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (mut from_user, to_user) = ch.split();
    let (mut rd, mut wr) = tokio::io::split(ours);
    tokio::spawn(async move {
        // Spawns the server's own task and returns.
        russh_sftp::server::run(theirs, DemoSftp::new(home)).await;
        let up = async move {
            while let Some(msg) = from_user.wait().await {
                match msg {
                    ChannelMsg::Data { data } if wr.write_all(&data).await.is_err() => break,
                    ChannelMsg::Data { .. } => {}
                    ChannelMsg::Eof | ChannelMsg::Close => break,
                    _ => {}
                }
            }
            let _ = wr.shutdown().await; // the server sees EOF and stops
        };
        let down = async {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = rd.read(&mut buf).await {
                if n == 0 || to_user.data_bytes(buf[..n].to_vec()).await.is_err() {
                    break;
                }
            }
        };
        tokio::join!(up, down);
        let _ = session.exit_status_request(id, 0).await;
        let _ = to_user.eof().await;
        let _ = to_user.close().await;
    });
}

/// What a handle names.
enum Open {
    File(tokio::fs::File),
    /// Entries not yet returned.
    Dir(Vec<File>),
}

/// One SFTP session.
pub(super) struct DemoSftp {
    home: PathBuf,
    open: HashMap<String, Open>,
    next: u64,
}

impl DemoSftp {
    pub(super) fn new(home: PathBuf) -> DemoSftp {
        DemoSftp { home, open: HashMap::new(), next: 0 }
    }

    /// A client path on the local file system: relative ones start at home.
    fn path(&self, p: &str) -> PathBuf {
        if p.is_empty() { self.home.clone() } else { self.home.join(p) }
    }

    fn add(&mut self, o: Open) -> String {
        self.next += 1;
        let h = self.next.to_string();
        self.open.insert(h.clone(), o);
        h
    }

    fn file(&mut self, handle: &str) -> Result<&mut tokio::fs::File, StatusReply> {
        match self.open.get_mut(handle) {
            Some(Open::File(f)) => Ok(f),
            _ => Err(StatusCode::Failure.with_message("invalid handle")),
        }
    }
}

fn ok(id: u32) -> Status {
    Status { id, status_code: StatusCode::Ok, error_message: "Ok".into(), language_tag: "en-US".into() }
}

fn io_err(e: std::io::Error) -> StatusReply {
    let code = match e.kind() {
        std::io::ErrorKind::NotFound => StatusCode::NoSuchFile,
        std::io::ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    };
    code.with_message(e.to_string())
}

/// `a/./b/../c` as `a/c`, without touching the file system (the path may not exist).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Applies the attributes a client may set: permissions, size, times.
async fn set_attrs(path: &Path, attrs: &FileAttributes) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(mode) = attrs.permissions {
        tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777)).await?;
    }
    if attrs.size.is_some() || attrs.mtime.is_some() {
        let f = std::fs::OpenOptions::new().write(attrs.size.is_some()).read(true).open(path)?;
        if let Some(size) = attrs.size {
            f.set_len(size)?;
        }
        if let (Some(a), Some(m)) = (attrs.atime, attrs.mtime) {
            let at = |s: u32| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.into());
            f.set_times(std::fs::FileTimes::new().set_accessed(at(a)).set_modified(at(m)))?;
        }
    }
    Ok(())
}

impl russh_sftp::server::Handler for DemoSftp {
    type Error = StatusReply;

    fn unimplemented(&self) -> StatusReply {
        StatusCode::OpUnsupported.into()
    }

    async fn init(&mut self, _version: u32, _ext: HashMap<String, String>) -> Result<Version, StatusReply> {
        Ok(Version::new())
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, StatusReply> {
        let p = self.path(&path);
        let real = tokio::fs::canonicalize(&p).await.unwrap_or_else(|_| normalize(&p));
        Ok(Name { id, files: vec![File::dummy(real.to_string_lossy())] })
    }

    async fn open(&mut self, id: u32, filename: String, pflags: OpenFlags, attrs: FileAttributes) -> Result<Handle, StatusReply> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut opts = std::fs::OpenOptions::from(pflags);
        opts.mode(attrs.permissions.unwrap_or(0o666) & 0o7777);
        let f = tokio::fs::OpenOptions::from(opts).open(self.path(&filename)).await.map_err(io_err)?;
        Ok(Handle { id, handle: self.add(Open::File(f)) })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, StatusReply> {
        match self.open.remove(&handle) {
            Some(Open::File(mut f)) => f.flush().await.map(|_| ok(id)).map_err(io_err),
            Some(Open::Dir(_)) => Ok(ok(id)),
            None => Err(StatusCode::Failure.with_message("invalid handle")),
        }
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Result<Data, StatusReply> {
        let f = self.file(&handle)?;
        f.seek(SeekFrom::Start(offset)).await.map_err(io_err)?;
        // OpenSSH asks for up to 255 KiB; a short read is fine, EOF is an empty one.
        let mut data = vec![0u8; len.min(256 * 1024) as usize];
        let mut got = 0;
        while got < data.len() {
            match f.read(&mut data[got..]).await.map_err(io_err)? {
                0 => break,
                n => got += n,
            }
        }
        if got == 0 && len > 0 {
            return Err(StatusCode::Eof.into());
        }
        data.truncate(got);
        Ok(Data { id, data })
    }

    async fn write(&mut self, id: u32, handle: String, offset: u64, data: Vec<u8>) -> Result<Status, StatusReply> {
        let f = self.file(&handle)?;
        f.seek(SeekFrom::Start(offset)).await.map_err(io_err)?;
        f.write_all(&data).await.map_err(io_err)?;
        Ok(ok(id))
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, StatusReply> {
        let m = tokio::fs::symlink_metadata(self.path(&path)).await.map_err(io_err)?;
        Ok(Attrs { id, attrs: (&m).into() })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, StatusReply> {
        let m = tokio::fs::metadata(self.path(&path)).await.map_err(io_err)?;
        Ok(Attrs { id, attrs: (&m).into() })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, StatusReply> {
        let m = self.file(&handle)?.metadata().await.map_err(io_err)?;
        Ok(Attrs { id, attrs: (&m).into() })
    }

    async fn setstat(&mut self, id: u32, path: String, attrs: FileAttributes) -> Result<Status, StatusReply> {
        set_attrs(&self.path(&path), &attrs).await.map(|_| ok(id)).map_err(io_err)
    }

    async fn fsetstat(&mut self, id: u32, handle: String, attrs: FileAttributes) -> Result<Status, StatusReply> {
        let f = self.file(&handle)?;
        if let Some(size) = attrs.size {
            f.set_len(size).await.map_err(io_err)?;
        }
        let std_file = f.try_clone().await.map_err(io_err)?.into_std().await;
        if let Some(mode) = attrs.permissions {
            use std::os::unix::fs::PermissionsExt;
            std_file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777)).map_err(io_err)?;
        }
        if let (Some(a), Some(m)) = (attrs.atime, attrs.mtime) {
            let at = |s: u32| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.into());
            std_file.set_times(std::fs::FileTimes::new().set_accessed(at(a)).set_modified(at(m))).map_err(io_err)?;
        }
        Ok(ok(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, StatusReply> {
        let mut rd = tokio::fs::read_dir(self.path(&path)).await.map_err(io_err)?;
        let mut entries = Vec::new();
        while let Some(e) = rd.next_entry().await.map_err(io_err)? {
            if let Ok(m) = tokio::fs::symlink_metadata(e.path()).await {
                entries.push(File::new(e.file_name().to_string_lossy(), (&m).into()));
            }
        }
        Ok(Handle { id, handle: self.add(Open::Dir(entries)) })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, StatusReply> {
        let Some(Open::Dir(entries)) = self.open.get_mut(&handle) else {
            return Err(StatusCode::Failure.with_message("invalid handle"));
        };
        if entries.is_empty() {
            return Err(StatusCode::Eof.into());
        }
        let rest = entries.split_off(entries.len().saturating_sub(DIR_BATCH));
        Ok(Name { id, files: rest })
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, StatusReply> {
        tokio::fs::remove_file(self.path(&filename)).await.map(|_| ok(id)).map_err(io_err)
    }

    async fn mkdir(&mut self, id: u32, path: String, attrs: FileAttributes) -> Result<Status, StatusReply> {
        use std::os::unix::fs::DirBuilderExt;
        let mut b = std::fs::DirBuilder::new();
        b.mode(attrs.permissions.unwrap_or(0o777) & 0o7777);
        b.create(self.path(&path)).map(|_| ok(id)).map_err(io_err)
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, StatusReply> {
        tokio::fs::remove_dir(self.path(&path)).await.map(|_| ok(id)).map_err(io_err)
    }

    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> Result<Status, StatusReply> {
        let (from, to) = (self.path(&oldpath), self.path(&newpath));
        // SFTP v3: renaming onto an existing name fails (OpenSSH's server does the same).
        if tokio::fs::symlink_metadata(&to).await.is_ok() {
            return Err(StatusCode::Failure.with_message(format!("{newpath} exists")));
        }
        tokio::fs::rename(from, to).await.map(|_| ok(id)).map_err(io_err)
    }

    async fn readlink(&mut self, id: u32, path: String) -> Result<Name, StatusReply> {
        let target = tokio::fs::read_link(self.path(&path)).await.map_err(io_err)?;
        Ok(Name { id, files: vec![File::dummy(target.to_string_lossy())] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_dots_lexically() {
        assert_eq!(normalize(Path::new("/home/u/./a/../b")), PathBuf::from("/home/u/b"));
        assert_eq!(normalize(Path::new("/../x")), PathBuf::from("/x"));
    }
}
