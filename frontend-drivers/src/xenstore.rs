//! A xenstore client over the store ring (`io/xs_wire.h`): `req` carries requests to
//! xenstored, `rsp` carries replies and watch events back. Both are 1 KiB byte rings with
//! free-running u32 indices; a message is an `xsd_sockmsg` header and `len` payload
//! bytes, and may wrap and span several ring fills.
//!
//! Requests are synchronous: write the request, then read messages until the reply with
//! our `req_id` arrives; watch events that arrive meanwhile are queued.

use crate::page::{Notify, SharedPage};
use core::mem::offset_of;
use xen_abi::errno::Errno;
use xen_abi::xenstore::*;
use xenstore_wire::{self as wire, Header, Request, HEADER_LEN};

const REQ: usize = offset_of!(XenstoreDomainInterface, req);
const RSP: usize = offset_of!(XenstoreDomainInterface, rsp);
const REQ_CONS: usize = offset_of!(XenstoreDomainInterface, req_cons);
const REQ_PROD: usize = offset_of!(XenstoreDomainInterface, req_prod);
const RSP_CONS: usize = offset_of!(XenstoreDomainInterface, rsp_cons);
const RSP_PROD: usize = offset_of!(XenstoreDomainInterface, rsp_prod);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// xenstored answered `XS_ERROR` with this errno.
    Xs(Errno),
    /// `Notify::wait` gave up.
    Timeout,
    /// The peer broke the protocol (index overrun, unknown reply, oversized message).
    Protocol,
    /// The reply did not fit the caller's buffer (its length).
    TooBig(usize),
}

pub type Result<T> = core::result::Result<T, Error>;

/// Transaction id: 0 = none.
pub type Tx = u32;
pub const NO_TX: Tx = 0;

const MAX_EVENTS: usize = 4;
const EVENT_BYTES: usize = 256;

#[derive(Clone, Copy, Debug)]
struct Event {
    len: usize,
    data: [u8; EVENT_BYTES],
}

/// A fired watch: its path and token.
#[derive(Clone, Copy, Debug)]
pub struct WatchEvent {
    event: Event,
}

impl WatchEvent {
    fn fields(&self) -> (&[u8], &[u8]) {
        wire::reply::watch_event(&self.event.data[..self.event.len]).unwrap_or((&[], &[]))
    }
    pub fn path(&self) -> &[u8] {
        self.fields().0
    }
    pub fn token(&self) -> &[u8] {
        self.fields().1
    }
}

#[derive(Debug)]
pub struct XenStore<P, N> {
    page: P,
    notify: N,
    next_id: u32,
    events: [Event; MAX_EVENTS],
    nr_events: usize,
    /// Events dropped because the queue was full.
    pub dropped_events: u32,
}

impl<P: SharedPage, N: Notify> XenStore<P, N> {
    pub fn new(page: P, notify: N) -> Self {
        let empty = Event { len: 0, data: [0; EVENT_BYTES] };
        Self { page, notify, next_id: 1, events: [empty; MAX_EVENTS], nr_events: 0, dropped_events: 0 }
    }

    fn put(&mut self, data: &[u8]) -> Result<()> {
        let mut done = 0;
        while done < data.len() {
            let cons = self.page.load_u32(REQ_CONS);
            let prod = self.page.load_u32(REQ_PROD);
            let used = prod.wrapping_sub(cons) as usize;
            if used > XENSTORE_RING_SIZE {
                return Err(Error::Protocol);
            }
            let n = (XENSTORE_RING_SIZE - used).min(data.len() - done);
            if n == 0 {
                self.notify.notify();
                if !self.notify.wait() {
                    return Err(Error::Timeout);
                }
                continue;
            }
            for (i, &b) in data[done..done + n].iter().enumerate() {
                self.page.write(REQ + mask_xenstore_idx(prod.wrapping_add(i as u32)), &[b]);
            }
            // Data before the index (release store).
            self.page.store_u32(REQ_PROD, prod.wrapping_add(n as u32));
            done += n;
        }
        self.notify.notify();
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes of replies; `None` as buf discards `len` bytes.
    fn get(&mut self, mut buf: Option<&mut [u8]>, len: usize) -> Result<()> {
        let mut done = 0;
        while done < len {
            let cons = self.page.load_u32(RSP_CONS);
            let prod = self.page.load_u32(RSP_PROD);
            let avail = prod.wrapping_sub(cons) as usize;
            if avail > XENSTORE_RING_SIZE {
                return Err(Error::Protocol);
            }
            let n = avail.min(len - done);
            if n == 0 {
                if !self.notify.wait() {
                    return Err(Error::Timeout);
                }
                continue;
            }
            for i in 0..n {
                let mut b = [0];
                self.page.read(RSP + mask_xenstore_idx(cons.wrapping_add(i as u32)), &mut b);
                if let Some(buf) = buf.as_deref_mut() {
                    buf[done + i] = b[0];
                }
            }
            self.page.store_u32(RSP_CONS, cons.wrapping_add(n as u32));
            self.notify.notify();
            done += n;
        }
        Ok(())
    }

    /// Reads one message; watch events are queued and `None` returned for them.
    fn receive(&mut self, reply: &mut [u8]) -> Result<Option<(Header, usize)>> {
        let mut h = [0u8; HEADER_LEN];
        self.get(Some(&mut h), HEADER_LEN)?;
        let hdr = Header::decode(&h).map_err(|_| Error::Protocol)?;
        let len = hdr.payload_len();
        if hdr.ty == XS_WATCH_EVENT {
            let mut ev = Event { len: len.min(EVENT_BYTES), data: [0; EVENT_BYTES] };
            self.get(Some(&mut ev.data[..ev.len]), ev.len)?;
            self.get(None, len - ev.len)?;
            if self.nr_events < MAX_EVENTS {
                self.events[self.nr_events] = ev;
                self.nr_events += 1;
            } else {
                self.dropped_events += 1;
            }
            return Ok(None);
        }
        let keep = len.min(reply.len());
        self.get(Some(&mut reply[..keep]), keep)?;
        self.get(None, len - keep)?;
        Ok(Some((hdr, len)))
    }

    /// Sends `req` (encoded by the shared wire crate) and returns the reply's payload
    /// length (in `reply`).
    pub fn call(&mut self, req: &Request<'_>, tx: Tx, reply: &mut [u8]) -> Result<usize> {
        let len = req.payload_len();
        if len > XENSTORE_PAYLOAD_MAX {
            return Err(Error::TooBig(len));
        }
        let ty = req.msg_type();
        let req_id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.put(&Header::new(ty, req_id, tx, len).encode())?;
        let mut sent = Ok(());
        req.for_each_part(&mut |part| {
            if sent.is_ok() {
                sent = self.put(part);
            }
        });
        sent?;
        loop {
            let Some((h, n)) = self.receive(reply)? else { continue };
            if h.req_id != req_id {
                return Err(Error::Protocol);
            }
            if h.ty == XS_ERROR {
                let keep = n.min(reply.len());
                return Err(Error::Xs(wire::reply::error_from_payload(&reply[..keep])));
            }
            if h.ty != u32::from(ty) {
                return Err(Error::Protocol);
            }
            if n > reply.len() {
                return Err(Error::TooBig(n));
            }
            return Ok(n);
        }
    }

    fn expect_ok(&mut self, req: &Request<'_>, tx: Tx) -> Result<()> {
        let mut r = [0u8; 8];
        let n = self.call(req, tx, &mut r)?;
        if wire::reply::is_ok(&r[..n]) {
            Ok(())
        } else {
            Err(Error::Protocol)
        }
    }

    /// The value of `path` (absolute, or relative to `/local/domain/<domid>`).
    pub fn read(&mut self, tx: Tx, path: &str, buf: &mut [u8]) -> Result<usize> {
        self.call(&Request::Read { path: path.as_bytes() }, tx, buf)
    }

    pub fn write(&mut self, tx: Tx, path: &str, value: &[u8]) -> Result<()> {
        self.expect_ok(&Request::Write { path: path.as_bytes(), value }, tx)
    }

    pub fn rm(&mut self, tx: Tx, path: &str) -> Result<()> {
        self.expect_ok(&Request::Rm { path: path.as_bytes() }, tx)
    }

    /// The children of `path`, NUL-separated in `buf` (see [`entries`]).
    pub fn directory(&mut self, tx: Tx, path: &str, buf: &mut [u8]) -> Result<usize> {
        self.call(&Request::Directory { path: path.as_bytes() }, tx, buf)
    }

    /// Registers a watch; xenstored fires it once at once.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<()> {
        self.expect_ok(&Request::Watch { path: path.as_bytes(), token: token.as_bytes() }, NO_TX)
    }

    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<()> {
        self.expect_ok(&Request::Unwatch { path: path.as_bytes(), token: token.as_bytes() }, NO_TX)
    }

    pub fn transaction_start(&mut self) -> Result<Tx> {
        let mut r = [0u8; 16];
        let n = self.call(&Request::TransactionStart, NO_TX, &mut r)?;
        wire::reply::number(&r[..n]).and_then(|v| u32::try_from(v).ok()).ok_or(Error::Protocol)
    }

    /// Commits (or aborts) `tx`; `Error::Xs(EAGAIN)` means retry the transaction.
    pub fn transaction_end(&mut self, tx: Tx, commit: bool) -> Result<()> {
        self.expect_ok(&Request::TransactionEnd { commit }, tx)
    }

    /// The next watch event, waiting for one if none is queued.
    pub fn next_event(&mut self) -> Result<WatchEvent> {
        while self.nr_events == 0 {
            let mut none = [0u8; 0];
            if let Some((h, n)) = self.receive(&mut none)? {
                let _ = (h, n);
                return Err(Error::Protocol); // a reply nobody asked for
            }
        }
        let ev = self.events[0];
        self.events.copy_within(1..self.nr_events, 0);
        self.nr_events -= 1;
        Ok(WatchEvent { event: ev })
    }

    pub fn pending_events(&self) -> usize {
        self.nr_events
    }
}

/// The names in a `directory` reply.
pub use wire::entries;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::MemPage;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::string::{String, ToString};
    use std::vec::Vec;

    /// An in-memory xenstored on the other end of the ring: one domain's view, relative
    /// paths under /local/domain/5, a node table, watches and transactions (committed
    /// at the end; `conflict` forces EAGAIN).
    struct Fake<'a> {
        page: &'a MemPage,
        state: RefCell<State>,
    }

    #[derive(Default)]
    struct State {
        nodes: BTreeMap<String, Vec<u8>>,
        watches: Vec<(String, String)>,
        tx: BTreeMap<u32, BTreeMap<String, Vec<u8>>>,
        next_tx: u32,
        conflict: bool,
        inbox: Vec<u8>,
        outbox: Vec<u8>,
        /// Deliver replies this many bytes at a time (exercises partial reads).
        chunk: usize,
        silent: bool,
    }

    impl<'a> Fake<'a> {
        fn new(page: &'a MemPage) -> Self {
            let mut st = State { next_tx: 1, chunk: 4096, ..Default::default() };
            st.nodes.insert("/local/domain/5/domid".into(), b"5".to_vec());
            st.nodes.insert("/local/domain/5/name".into(), b"guest".to_vec());
            Fake { page, state: RefCell::new(st) }
        }

        fn abs(p: &str) -> String {
            if p.starts_with('/') || p.starts_with('@') { p.to_string() } else { std::format!("/local/domain/5/{p}") }
        }

        fn reply(st: &mut State, ty: u32, req_id: u32, tx: u32, payload: &[u8]) {
            let h = Header { ty, req_id, tx_id: tx, len: payload.len() as u32 };
            st.outbox.extend_from_slice(&h.encode());
            st.outbox.extend_from_slice(payload);
        }

        fn fire(st: &mut State, path: &str) {
            let hits: Vec<(String, String)> =
                st.watches.iter().filter(|(w, _)| path.starts_with(w.as_str())).cloned().collect();
            for (_, token) in hits {
                let mut p = path.as_bytes().to_vec();
                p.push(0);
                p.extend_from_slice(token.as_bytes());
                p.push(0);
                Self::reply(st, XS_WATCH_EVENT, 0, 0, &p);
            }
        }

        fn handle(st: &mut State, h: Header, body: &[u8]) {
            let fields: Vec<&[u8]> = body.split(|&b| b == 0).collect();
            let s = |i: usize| String::from_utf8_lossy(fields.get(i).copied().unwrap_or(b"")).to_string();
            let ok = |st: &mut State| Self::reply(st, h.ty, h.req_id, h.tx_id, b"OK\0");
            let err = |st: &mut State, e: &str| {
                let mut p = e.as_bytes().to_vec();
                p.push(0);
                Self::reply(st, XS_ERROR, h.req_id, h.tx_id, &p)
            };
            let tx = h.tx_id;
            if tx != 0 && !st.tx.contains_key(&tx) && h.ty != XS_TRANSACTION_START {
                return err(st, "ESRCH");
            }
            match h.ty {
                XS_READ => {
                    let path = Self::abs(&s(0));
                    let v = if tx != 0 { st.tx[&tx].get(&path).cloned() } else { None }.or_else(|| st.nodes.get(&path).cloned());
                    match v {
                        Some(v) => Self::reply(st, XS_READ, h.req_id, tx, &v),
                        None => err(st, "ENOENT"),
                    }
                }
                XS_WRITE => {
                    let path = Self::abs(&s(0));
                    let value = body[fields[0].len() + 1..].to_vec();
                    if tx != 0 {
                        st.tx.get_mut(&tx).unwrap().insert(path, value);
                    } else {
                        st.nodes.insert(path.clone(), value);
                        Self::fire(st, &path);
                    }
                    ok(st)
                }
                XS_DIRECTORY => {
                    let dir = Self::abs(&s(0)) + "/";
                    let mut names: Vec<String> = st
                        .nodes
                        .keys()
                        .filter_map(|k| k.strip_prefix(&dir).map(|r| r.split('/').next().unwrap().to_string()))
                        .collect();
                    names.dedup();
                    let mut p = Vec::new();
                    for n in names {
                        p.extend_from_slice(n.as_bytes());
                        p.push(0);
                    }
                    Self::reply(st, XS_DIRECTORY, h.req_id, tx, &p)
                }
                XS_WATCH => {
                    let (path, token) = (Self::abs(&s(0)), s(1));
                    st.watches.push((path.clone(), token));
                    ok(st);
                    Self::fire(st, &path);
                }
                XS_UNWATCH => {
                    let (path, token) = (Self::abs(&s(0)), s(1));
                    st.watches.retain(|w| *w != (path.clone(), token.clone()));
                    ok(st)
                }
                XS_TRANSACTION_START => {
                    let id = st.next_tx;
                    st.next_tx += 1;
                    st.tx.insert(id, BTreeMap::new());
                    Self::reply(st, h.ty, h.req_id, 0, std::format!("{id}\0").as_bytes())
                }
                XS_TRANSACTION_END => {
                    let writes = st.tx.remove(&tx).unwrap();
                    if s(0) == "T" {
                        if st.conflict {
                            st.conflict = false;
                            return err(st, "EAGAIN");
                        }
                        for (k, v) in writes {
                            st.nodes.insert(k.clone(), v);
                            Self::fire(st, &k);
                        }
                    }
                    ok(st)
                }
                _ => err(st, "ENOSYS"),
            }
        }

        /// Moves bytes: consumes requests, produces replies. Returns whether anything moved.
        fn pump(&self) -> bool {
            let mut st = self.state.borrow_mut();
            if st.silent {
                return false;
            }
            let mut moved = false;
            let (cons, prod) = (self.page.load_u32(REQ_CONS), self.page.load_u32(REQ_PROD));
            for i in 0..prod.wrapping_sub(cons) {
                let mut b = [0];
                self.page.read(REQ + mask_xenstore_idx(cons.wrapping_add(i)), &mut b);
                st.inbox.push(b[0]);
                moved = true;
            }
            self.page.store_u32(REQ_CONS, prod);
            while st.inbox.len() >= HEADER_LEN {
                let h = Header::decode(&st.inbox[..HEADER_LEN]).unwrap();
                let total = HEADER_LEN + h.len as usize;
                if st.inbox.len() < total {
                    break;
                }
                let body: Vec<u8> = st.inbox[HEADER_LEN..total].to_vec();
                st.inbox.drain(..total);
                Self::handle(&mut st, h, &body);
            }
            let (cons, prod) = (self.page.load_u32(RSP_CONS), self.page.load_u32(RSP_PROD));
            let room = XENSTORE_RING_SIZE - prod.wrapping_sub(cons) as usize;
            let n = room.min(st.outbox.len()).min(st.chunk);
            for (i, b) in st.outbox.drain(..n).enumerate() {
                self.page.write(RSP + mask_xenstore_idx(prod.wrapping_add(i as u32)), &[b]);
            }
            self.page.store_u32(RSP_PROD, prod.wrapping_add(n as u32));
            moved || n > 0
        }
    }

    impl Notify for &Fake<'_> {
        fn notify(&self) {}
        fn wait(&self) -> bool {
            self.pump()
        }
    }

    fn client<'a>(fake: &'a Fake<'a>) -> XenStore<&'a MemPage, &'a Fake<'a>> {
        XenStore::new(fake.page, fake)
    }

    #[test]
    fn read_write_directory() {
        let page = MemPage::new();
        let fake = Fake::new(&page);
        let mut xs = client(&fake);
        let mut buf = [0u8; 64];
        let n = xs.read(NO_TX, "domid", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"5");
        xs.write(NO_TX, "data/x", b"hello").unwrap();
        let n = xs.read(NO_TX, "/local/domain/5/data/x", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        let n = xs.directory(NO_TX, "/local/domain/5", &mut buf).unwrap();
        let names: Vec<&[u8]> = entries(&buf[..n]).collect();
        assert_eq!(names, [&b"data"[..], b"domid", b"name"]);
        assert_eq!(xs.read(NO_TX, "nope", &mut buf), Err(Error::Xs(Errno::ENOENT)));
        let mut small = [0u8; 2];
        assert_eq!(xs.read(NO_TX, "data/x", &mut small), Err(Error::TooBig(5)));
        // The connection survives the oversized reply.
        let n = xs.read(NO_TX, "name", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"guest");
    }

    #[test]
    fn messages_wrap_the_rings_in_pieces() {
        let page = MemPage::new();
        // Indices near the u32 wrap.
        for off in [REQ_CONS, REQ_PROD, RSP_CONS, RSP_PROD] {
            page.store_u32(off, u32::MAX - 100);
        }
        let fake = Fake::new(&page);
        fake.state.borrow_mut().chunk = 7;
        let mut xs = client(&fake);
        let big: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
        xs.write(NO_TX, "data/big", &big).unwrap();
        let mut buf = [0u8; 4096];
        let n = xs.read(NO_TX, "data/big", &mut buf).unwrap();
        assert_eq!(&buf[..n], &big[..]);
    }

    #[test]
    fn watches() {
        let page = MemPage::new();
        let fake = Fake::new(&page);
        let mut xs = client(&fake);
        xs.watch("data", "tok").unwrap();
        // Fires once on registration.
        let ev = xs.next_event().unwrap();
        assert_eq!((ev.path(), ev.token()), (&b"/local/domain/5/data"[..], &b"tok"[..]));
        // An event arriving while waiting for a reply is queued.
        xs.write(NO_TX, "data/y", b"1").unwrap();
        assert_eq!(xs.pending_events(), 1);
        let ev = xs.next_event().unwrap();
        assert_eq!(ev.path(), b"/local/domain/5/data/y");
        xs.unwatch("data", "tok").unwrap();
        xs.write(NO_TX, "data/z", b"2").unwrap();
        assert_eq!(xs.pending_events(), 0);
    }

    #[test]
    fn transactions() {
        let page = MemPage::new();
        let fake = Fake::new(&page);
        let mut xs = client(&fake);
        let tx = xs.transaction_start().unwrap();
        assert_ne!(tx, NO_TX);
        xs.write(tx, "data/t", b"in-tx").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(xs.read(NO_TX, "data/t", &mut buf), Err(Error::Xs(Errno::ENOENT)));
        assert_eq!(xs.read(tx, "data/t", &mut buf), Ok(5));
        xs.transaction_end(tx, true).unwrap();
        assert_eq!(xs.read(NO_TX, "data/t", &mut buf), Ok(5));
        // A conflicting commit asks for a retry; an abort drops the writes.
        let tx = xs.transaction_start().unwrap();
        fake.state.borrow_mut().conflict = true;
        assert_eq!(xs.transaction_end(tx, true), Err(Error::Xs(Errno::EAGAIN)));
        let tx = xs.transaction_start().unwrap();
        xs.write(tx, "data/u", b"x").unwrap();
        xs.transaction_end(tx, false).unwrap();
        assert_eq!(xs.read(NO_TX, "data/u", &mut buf), Err(Error::Xs(Errno::ENOENT)));
    }

    #[test]
    fn peer_failures() {
        let page = MemPage::new();
        let fake = Fake::new(&page);
        let mut xs = client(&fake);
        fake.state.borrow_mut().silent = true;
        let mut buf = [0u8; 8];
        assert_eq!(xs.read(NO_TX, "domid", &mut buf), Err(Error::Timeout));
        // A peer that publishes an index beyond the ring is a protocol error, not an overrun.
        let page = MemPage::new();
        let fake = Fake::new(&page);
        fake.state.borrow_mut().silent = true;
        page.store_u32(RSP_PROD, 5000);
        let mut xs = client(&fake);
        assert_eq!(xs.read(NO_TX, "domid", &mut buf), Err(Error::Protocol));
    }
}
