//! What a session's data frames carry, decided from its manifest rather than guessed from
//! its bytes: a terminal (replayed through the emulator), plain text (a command run
//! without a terminal: its output is searchable text until it turns out to be binary), or
//! a binary protocol (SFTP, `scp -t/-f`, `rsync --server`, tunnels) whose bytes mean
//! nothing on a screen — there the proxy's file-transfer events are what gets indexed.

use gatehouse_recorder::SessionMeta;

/// How the pipeline treats a session's output and input frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// A terminal session (a shell, or a command with a pty; local recordings and
    /// imported casts): replayed through the emulator, commands extracted.
    Terminal,
    /// A command without a terminal (`ssh host cat /etc/hosts`): its output is read as
    /// text; from the first chunk that is not text on, the rest is skipped.
    Text,
    /// A binary protocol: data frames are not replayed, only events are kept.
    Binary,
}

/// Exec commands that speak a file-transfer protocol on their standard streams (the
/// programs OpenSSH's and rsync's clients start on the remote side).
fn transfer_protocol(command: &str) -> bool {
    let mut words = command.split_whitespace();
    let Some(program) = words.next() else {
        return false;
    };
    let name = program.rsplit('/').next().unwrap_or(program);
    let args: Vec<&str> = words.collect();
    match name {
        // `scp -t DIR` (upload sink) and `scp -f PATH` (download source), flags in any
        // order and possibly bundled (`-dt`, `-rf`).
        "scp" => args.iter().take_while(|a| a.starts_with('-')).any(|a| a.contains(['t', 'f']) && !a.starts_with("--")),
        "rsync" => args.contains(&"--server"),
        "sftp-server" | "internal-sftp" => true,
        _ => false,
    }
}

impl Stream {
    /// The stream kind of a recorded session. A session without a channel (a local
    /// recording, an imported cast) is a terminal.
    pub fn of(meta: &SessionMeta) -> Stream {
        let command = meta.command.as_deref().unwrap_or("");
        match meta.channel.as_deref() {
            None | Some("shell") => Stream::Terminal,
            Some("exec") if transfer_protocol(command) => Stream::Binary,
            Some("exec") if meta.term.is_some() => Stream::Terminal,
            Some("exec") => Stream::Text,
            // `sftp`, other subsystems, tunnels (`direct-tcpip`, `forwarded-tcpip`, …).
            Some(_) => Stream::Binary,
        }
    }
}

/// Whether an output chunk of a command without a terminal is binary rather than text:
/// bytes that are not UTF-8 (a character cut at the chunk's end is fine), or NUL bytes
/// making up 1% of it or more (text never has them; archives and executables are full).
pub(crate) fn looks_binary(bytes: &[u8]) -> bool {
    if let Err(e) = std::str::from_utf8(bytes)
        && e.error_len().is_some()
    {
        return true;
    }
    let nul = memchr::memchr_iter(0, bytes).count();
    nul > 0 && nul * 100 >= bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(channel: Option<&str>, command: Option<&str>, term: Option<&str>) -> SessionMeta {
        SessionMeta {
            channel: channel.map(str::to_string),
            command: command.map(str::to_string),
            term: term.map(str::to_string),
            ..SessionMeta::default()
        }
    }

    #[test]
    fn stream_kind_from_the_manifest() {
        // (channel, command, terminal type, stream)
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, Stream);
        let cases: &[Case] = &[
            (None, None, None, Stream::Terminal),
            (Some("shell"), None, Some("xterm"), Stream::Terminal),
            (Some("exec"), Some("top"), Some("xterm"), Stream::Terminal),
            (Some("exec"), Some("cat /etc/hosts"), None, Stream::Text),
            (Some("exec"), Some("scp -t /tmp"), None, Stream::Binary),
            (Some("exec"), Some("scp -d -t -- /tmp/"), None, Stream::Binary),
            (Some("exec"), Some("/usr/bin/scp -rf /var/log"), None, Stream::Binary),
            (Some("exec"), Some("scp --version"), None, Stream::Text),
            (Some("exec"), Some("rsync --server -vlogDtpre.iLsfxCIvu . /srv/"), None, Stream::Binary),
            (Some("exec"), Some("rsync --version"), None, Stream::Text),
            (Some("exec"), Some("/usr/lib/openssh/sftp-server"), None, Stream::Binary),
            (Some("sftp"), None, None, Stream::Binary),
            (Some("subsystem:netconf"), None, None, Stream::Binary),
            (Some("direct-tcpip"), None, None, Stream::Binary),
        ];
        for (channel, command, term, want) in cases {
            assert_eq!(Stream::of(&meta(*channel, *command, *term)), *want, "{channel:?} {command:?} {term:?}");
        }
    }

    #[test]
    fn binary_chunks() {
        assert!(!looks_binary(b"127.0.0.1 localhost\n"));
        assert!(!looks_binary("héllo wörld".as_bytes()));
        // A character cut at the end of a chunk continues in the next one.
        assert!(!looks_binary(&"日本".as_bytes()[..4]));
        assert!(looks_binary(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
        assert!(looks_binary(b"abc\xff\xfedef"));
        assert!(looks_binary(&[b'a', 0, 0, 0, b'b']));
        let mostly_text: Vec<u8> = std::iter::repeat_n(b'x', 1000).chain([0]).collect();
        assert!(!looks_binary(&mostly_text), "one stray NUL in a kilobyte of text");
    }
}
