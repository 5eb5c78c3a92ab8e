//! File transfers of legacy `scp` sessions (`scp -O`, an exec of `scp -t DEST` or
//! `scp -f PATH...` speaking the rcp protocol), decoded from the recorded stream of the
//! side that sends files — the user's input for `-t`, the target's output for `-f` — into
//! the same `file.write` / `file.read` events the proxy records for SFTP, with
//! `"via": "scp"`.
//!
//! The protocol: `C<mode> <size> <name>\n`, `size` bytes, a status byte; `D<mode> 0
//! <name>\n` … `E\n` around a directory's files; `T…\n` times; `\x01`/`\x02` error lines.
//! Known limit: for `scp -t DEST` without `-d`, whether DEST is a directory is not in the
//! stream; such a file is reported with `path` DEST and its own `name`.

use serde_json::{Value, json};

/// Which way files go in this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// `scp -t`: the user uploads; files are in the input.
    Upload,
    /// `scp -f`: the user downloads; files are in the output.
    Download,
}

enum State {
    /// Reading a control line.
    Line(Vec<u8>),
    /// Skipping a file's bytes (then its status byte).
    Data { left: u64 },
    /// The status byte after a file's bytes.
    Status,
}

/// Decodes one legacy scp session's file stream.
pub(crate) struct ScpDecoder {
    direction: Direction,
    /// The paths on the command line (`-t`: one destination).
    args: Vec<String>,
    /// `-d`: the destination is a directory.
    dir_target: bool,
    dirs: Vec<String>,
    state: State,
    /// The file being transferred: path, name, size.
    file: Option<(String, String, u64)>,
}

/// Longest control line kept (a file name is at most a few KiB).
const MAX_LINE: usize = 8192;

impl ScpDecoder {
    /// A decoder for an exec command line, if it is a legacy scp transfer.
    pub(crate) fn for_command(command: &str) -> Option<ScpDecoder> {
        let mut words = command.split_whitespace();
        let program = words.next()?;
        if program.rsplit('/').next() != Some("scp") {
            return None;
        }
        let (mut direction, mut dir_target, mut args, mut options) = (None, false, Vec::new(), true);
        for w in words {
            if options && w == "--" {
                options = false;
            } else if options && w.starts_with('-') {
                if w.contains('t') {
                    direction = Some(Direction::Upload);
                }
                if w.contains('f') {
                    direction = Some(Direction::Download);
                }
                dir_target |= w.contains('d');
            } else {
                options = false;
                args.push(w.to_string());
            }
        }
        Some(ScpDecoder {
            direction: direction?,
            args,
            dir_target,
            dirs: Vec::new(),
            state: State::Line(Vec::new()),
            file: None,
        })
    }

    /// The direction whose bytes carry the files.
    pub(crate) fn direction(&self) -> Direction {
        self.direction
    }

    /// Feeds bytes of the file-carrying direction; returns the events of files completed.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Vec<(&'static str, Value)> {
        let mut events = Vec::new();
        while !bytes.is_empty() {
            match &mut self.state {
                State::Line(line) => {
                    let end = memchr::memchr(b'\n', bytes);
                    let take = end.map_or(bytes.len(), |i| i + 1);
                    if line.len() < MAX_LINE {
                        line.extend_from_slice(&bytes[..take.min(MAX_LINE - line.len())]);
                    }
                    bytes = &bytes[take..];
                    if end.is_some() {
                        let line = std::mem::take(line);
                        self.control(&line);
                    }
                }
                State::Data { left } => {
                    let take = (*left).min(bytes.len() as u64);
                    *left -= take;
                    bytes = &bytes[take as usize..];
                    if *left == 0 {
                        self.state = State::Status;
                    }
                }
                State::Status => {
                    bytes = &bytes[1..];
                    self.state = State::Line(Vec::new());
                    if let Some((path, name, size)) = self.file.take() {
                        let kind = match self.direction {
                            Direction::Upload => "file.write",
                            Direction::Download => "file.read",
                        };
                        let mut data = json!({ "path": path, "bytes": size, "via": "scp" });
                        if !path.ends_with(&format!("/{name}")) && path != name {
                            data["name"] = json!(name);
                        }
                        events.push((kind, data));
                    }
                }
            }
        }
        events
    }

    fn control(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\n');
        let Some(kind) = text.chars().next() else { return };
        let mut parts = text[1..].splitn(3, ' ');
        let (_mode, size, name) = (parts.next(), parts.next(), parts.next());
        match (kind, size.and_then(|s| s.parse::<u64>().ok()), name) {
            ('C', Some(size), Some(name)) => {
                self.file = Some((self.path_of(name), name.to_string(), size));
                self.state = if size == 0 { State::Status } else { State::Data { left: size } };
            }
            ('D', Some(_), Some(name)) => {
                let path = self.path_of(name);
                self.dirs.push(path);
            }
            ('E', ..) => {
                self.dirs.pop();
            }
            _ => {} // times, error lines, anything unknown
        }
    }

    /// Where a file or directory named `name` at the current depth is.
    fn path_of(&self, name: &str) -> String {
        if let Some(dir) = self.dirs.last() {
            return format!("{}/{name}", dir.trim_end_matches('/'));
        }
        match self.direction {
            Direction::Download => self
                .args
                .iter()
                .find(|a| a.trim_end_matches('/').rsplit('/').next() == Some(name))
                .cloned()
                .unwrap_or_else(|| name.to_string()),
            Direction::Upload => {
                let dest = self.args.first().map_or(".", String::as_str);
                if self.dir_target || dest.ends_with('/') {
                    format!("{}/{name}", dest.trim_end_matches('/'))
                } else {
                    dest.to_string()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drip(d: &mut ScpDecoder, bytes: &[u8]) -> Vec<(&'static str, Value)> {
        bytes.iter().flat_map(|b| d.feed(&[*b])).collect()
    }

    #[test]
    fn commands() {
        assert!(ScpDecoder::for_command("scp --version").is_none());
        assert!(ScpDecoder::for_command("cat /etc/hosts").is_none());
        assert_eq!(ScpDecoder::for_command("scp -t /tmp").unwrap().direction(), Direction::Upload);
        assert_eq!(ScpDecoder::for_command("/usr/bin/scp -r -f -- /var/log").unwrap().direction(), Direction::Download);
    }

    #[test]
    fn upload_into_a_directory_split_anywhere() {
        let mut d = ScpDecoder::for_command("scp -d -t -- /srv/in").unwrap();
        let stream = b"T1700000000 0 1700000000 0\nC0644 5 a.txt\nhello\0C0600 0 empty\n\0";
        let ev = drip(&mut d, stream);
        assert_eq!(
            ev,
            vec![
                ("file.write", json!({"path": "/srv/in/a.txt", "bytes": 5, "via": "scp"})),
                ("file.write", json!({"path": "/srv/in/empty", "bytes": 0, "via": "scp"})),
            ]
        );
    }

    #[test]
    fn upload_to_a_name_that_may_be_a_directory() {
        let mut d = ScpDecoder::for_command("scp -t /tmp").unwrap();
        let ev = d.feed(b"C0644 3 x.bin\n\0\0\0\0");
        assert_eq!(ev, vec![("file.write", json!({"path": "/tmp", "bytes": 3, "via": "scp", "name": "x.bin"}))]);
    }

    #[test]
    fn recursive_download_with_an_error_line() {
        let mut d = ScpDecoder::for_command("scp -r -f /var/log").unwrap();
        let stream =
            b"D0755 0 log\nC0644 4 syslog\nabcd\0D0700 0 private\n\x01scp: private/x: Permission denied\nE\nE\n";
        let ev = d.feed(stream);
        assert_eq!(ev, vec![("file.read", json!({"path": "/var/log/syslog", "bytes": 4, "via": "scp"}))]);
    }
}
