//! A xenstore client over xenstored's unix socket (what dom0's tools use).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use xenstore_wire::{reply, Errno, Header, Request, XsType, HEADER_LEN};

pub const DEFAULT_SOCKET: &str = "/run/xenstored/socket";

#[derive(Debug)]
pub enum Error {
    Io(io::Error),
    /// xenstored answered with this errno.
    Xs(Errno),
    Protocol(&'static str),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "xenstore: {e}"),
            Error::Xs(e) => write!(f, "xenstore: {}", e.name().unwrap_or("error")),
            Error::Protocol(w) => write!(f, "xenstore protocol error: {w}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug)]
pub struct Xs {
    sock: UnixStream,
    next_id: u32,
    /// Watch events that arrived while waiting for a reply: (path, token).
    pub events: Vec<(String, String)>,
}

impl Xs {
    pub fn open() -> Result<Xs> {
        let path = std::env::var("XENSTORED_PATH").unwrap_or_else(|_| DEFAULT_SOCKET.into());
        Self::open_at(Path::new(&path))
    }

    pub fn open_at(path: &Path) -> Result<Xs> {
        let sock = UnixStream::connect(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(Xs { sock, next_id: 1, events: Vec::new() })
    }

    /// The socket, for `poll` (watch events make it readable).
    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.sock.as_raw_fd()
    }

    /// Reads one pending watch event (call when [`Xs::fd`] is readable).
    pub fn read_event(&mut self) -> Result<Option<(String, String)>> {
        let (h, body) = self.read_msg()?;
        if h.ty == u32::from(XsType::WatchEvent) {
            if let Some((p, t)) = reply::watch_event(&body) {
                return Ok(Some((String::from_utf8_lossy(p).into(), String::from_utf8_lossy(t).into())));
            }
        }
        Ok(None)
    }

    fn read_msg(&mut self) -> Result<(Header, Vec<u8>)> {
        let mut h = [0u8; HEADER_LEN];
        self.sock.read_exact(&mut h)?;
        let h = Header::decode(&h).map_err(|_| Error::Protocol("bad header"))?;
        let mut body = vec![0u8; h.payload_len()];
        self.sock.read_exact(&mut body)?;
        Ok((h, body))
    }

    /// Sends `req` and waits for its reply's payload.
    pub fn call(&mut self, req: &Request<'_>, tx: u32) -> Result<Vec<u8>> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let payload = req.to_payload();
        let mut msg = Header::new(req.msg_type(), id, tx, payload.len()).encode().to_vec();
        msg.extend_from_slice(&payload);
        self.sock.write_all(&msg)?;
        loop {
            let (h, body) = self.read_msg()?;
            if h.ty == u32::from(XsType::WatchEvent) {
                if let Some((p, t)) = reply::watch_event(&body) {
                    self.events.push((String::from_utf8_lossy(p).into(), String::from_utf8_lossy(t).into()));
                }
                continue;
            }
            if h.req_id != id {
                return Err(Error::Protocol("reply to another request"));
            }
            if h.ty == u32::from(XsType::Error) {
                return Err(Error::Xs(reply::error_from_payload(&body)));
            }
            return Ok(body);
        }
    }

    pub fn read(&mut self, tx: u32, path: &str) -> Result<Vec<u8>> {
        self.call(&Request::Read { path: path.as_bytes() }, tx)
    }

    pub fn read_string(&mut self, tx: u32, path: &str) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.read(tx, path)?).into_owned())
    }

    pub fn write(&mut self, tx: u32, path: &str, value: &[u8]) -> Result<()> {
        self.call(&Request::Write { path: path.as_bytes(), value }, tx).map(|_| ())
    }

    pub fn mkdir(&mut self, tx: u32, path: &str) -> Result<()> {
        self.call(&Request::Mkdir { path: path.as_bytes() }, tx).map(|_| ())
    }

    pub fn rm(&mut self, tx: u32, path: &str) -> Result<()> {
        self.call(&Request::Rm { path: path.as_bytes() }, tx).map(|_| ())
    }

    pub fn directory(&mut self, tx: u32, path: &str) -> Result<Vec<String>> {
        let body = self.call(&Request::Directory { path: path.as_bytes() }, tx)?;
        Ok(xenstore_wire::entries(&body).map(|e| String::from_utf8_lossy(e).into_owned()).collect())
    }

    pub fn set_perms(&mut self, tx: u32, path: &str, perms: &[xenstore_wire::Perm]) -> Result<()> {
        let list = xenstore_wire::perms::encode_list(perms);
        self.call(&Request::SetPerms { path: path.as_bytes(), perms: &list }, tx).map(|_| ())
    }

    pub fn watch(&mut self, path: &str, token: &str) -> Result<()> {
        self.call(&Request::Watch { path: path.as_bytes(), token: token.as_bytes() }, 0).map(|_| ())
    }

    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<()> {
        self.call(&Request::Unwatch { path: path.as_bytes(), token: token.as_bytes() }, 0).map(|_| ())
    }

    /// The next watch event (queued or from the socket).
    pub fn next_event(&mut self) -> Result<(String, String)> {
        if !self.events.is_empty() {
            return Ok(self.events.remove(0));
        }
        loop {
            let (h, body) = self.read_msg()?;
            if h.ty == u32::from(XsType::WatchEvent) {
                if let Some((p, t)) = reply::watch_event(&body) {
                    return Ok((String::from_utf8_lossy(p).into(), String::from_utf8_lossy(t).into()));
                }
            }
        }
    }

    pub fn transaction_start(&mut self) -> Result<u32> {
        let body = self.call(&Request::TransactionStart, 0)?;
        reply::number(&body).and_then(|n| u32::try_from(n).ok()).ok_or(Error::Protocol("bad transaction id"))
    }

    /// Commits (`true`) or aborts; `Err(Xs(EAGAIN))` means retry.
    pub fn transaction_end(&mut self, tx: u32, commit: bool) -> Result<()> {
        self.call(&Request::TransactionEnd { commit }, tx).map(|_| ())
    }

    pub fn introduce(&mut self, domid: u32, mfn: u64, port: u32) -> Result<()> {
        self.call(&Request::Introduce { domid, mfn, port }, 0).map(|_| ())
    }

    pub fn release(&mut self, domid: u32) -> Result<()> {
        self.call(&Request::Release { domid }, 0).map(|_| ())
    }

    pub fn get_domain_path(&mut self, domid: u32) -> Result<String> {
        let b = self.call(&Request::GetDomainPath { domid }, 0)?;
        Ok(String::from_utf8_lossy(b.strip_suffix(b"\0").unwrap_or(&b)).into_owned())
    }
}
