//! The xenstore service domain's logic, free of I/O (host-tested): the tree a toolstack
//! (libxl) would create for the client domains and their block devices, and the server
//! that moves bytes between each client's store ring and the shared store engine
//! (`xenstore_wire::store`). `xenstored` (bare metal) maps the rings and runs it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use xenstore_wire::server_ring::{self, Page};
use xenstore_wire::store::{Caller, ConnId, Outgoing, Store};
use xenstore_wire::{Errno, Header, Request};

/// The virtual-device number of `xvda` (`(202 << 8) | 0`).
pub const VBD_DEVID: u32 = 51712;

/// The connection id of the xenstore domain itself acting as the toolstack (clients'
/// connections are numbered by their domain id).
const TOOLSTACK: Caller = Caller { conn: u32::MAX, domid: 0, privileged: true };

/// Most reply bytes queued for a client that does not read them before it is dropped.
const OUTBOX_MAX: usize = 256 * 1024;

/// A block device to set up: front-end domain and back-end domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vbd {
    pub front: u16,
    pub back: u16,
}

/// `1,2,3` (bad entries are skipped).
pub fn parse_domids(s: &str) -> Vec<u16> {
    s.split(',').filter_map(|v| v.parse().ok()).collect()
}

/// `F:B,F:B`.
pub fn parse_vbds(s: &str) -> Vec<Vbd> {
    s.split(',')
        .filter_map(|p| {
            let (f, b) = p.split_once(':')?;
            Some(Vbd { front: f.parse().ok()?, back: b.parse().ok()? })
        })
        .collect()
}

/// The front-end's device directory.
pub fn frontend_path(v: Vbd) -> String {
    format!("/local/domain/{}/device/vbd/{VBD_DEVID}", v.front)
}

/// The back-end's device directory.
pub fn backend_path(v: Vbd) -> String {
    format!("/local/domain/{}/backend/vbd/{}/{VBD_DEVID}", v.back, v.front)
}

fn tool(store: &mut Store, r: Request<'_>) -> Result<(), Errno> {
    let payload = r.to_payload();
    let (out, _) = store.handle(TOOLSTACK, Header::new(r.msg_type(), 0, 0, payload.len()), &payload);
    match out.first() {
        Some(o) if o.header.ty == u32::from(xenstore_wire::XsType::Error) => Err(xenstore_wire::reply::error_from_payload(&o.payload)),
        Some(_) => Ok(()),
        None => Err(Errno::EIO),
    }
}

fn write(store: &mut Store, path: &str, value: &str) -> Result<(), Errno> {
    tool(store, Request::Write { path: path.as_bytes(), value: value.as_bytes() })
}

fn set_perms(store: &mut Store, path: &str, perms: &str) -> Result<(), Errno> {
    // "n5\0r2\0": NUL-separated.
    let list: Vec<u8> = perms.split(' ').flat_map(|p| p.bytes().chain(core::iter::once(0))).collect();
    tool(store, Request::SetPerms { path: path.as_bytes(), perms: &list })
}

/// What libxl creates for each client domain and each block device, as the xenstore
/// domain (which acts as dom0, the toolstack). Each domain owns `/local/domain/<id>`;
/// a device's front-end directory is owned by the front-end and readable by the
/// back-end, its back-end directory owned by the back-end and readable by the front-end.
pub fn toolstack_setup(store: &mut Store, clients: &[(u16, &str)], vbds: &[Vbd]) -> Result<(), Errno> {
    for &(id, name) in clients {
        let home = format!("/local/domain/{id}");
        tool(store, Request::Mkdir { path: home.as_bytes() })?;
        set_perms(store, &home, &format!("n{id}"))?;
        write(store, &format!("{home}/name"), name)?;
        write(store, &format!("{home}/domid"), &format!("{id}"))?;
        for dir in ["device", "control", "data", "drivers", "feature", "attr", "error"] {
            tool(store, Request::Mkdir { path: format!("{home}/{dir}").as_bytes() })?;
        }
        write(store, &format!("/vm/{id}/name"), name)?;
        tool(store, Request::Introduce { domid: u32::from(id), mfn: 0, port: 0 })?;
    }
    for &v in vbds {
        let (fe, be) = (frontend_path(v), backend_path(v));
        tool(store, Request::Mkdir { path: fe.as_bytes() })?;
        set_perms(store, &fe, &format!("n{} r{}", v.front, v.back))?;
        tool(store, Request::Mkdir { path: be.as_bytes() })?;
        set_perms(store, &be, &format!("n{} r{}", v.back, v.front))?;
        let be_keys = [
            ("frontend", fe.clone()),
            ("frontend-id", format!("{}", v.front)),
            ("online", "1".into()),
            ("removable", "0".into()),
            ("bootable", "1".into()),
            ("type", "phy".into()),
            ("params", "ramdisk".into()),
            ("mode", "w".into()),
            ("dev", "xvda".into()),
            ("device-type", "disk".into()),
            ("state", "1".into()),
        ];
        for (k, val) in &be_keys {
            write(store, &format!("{be}/{k}"), val)?;
        }
        let fe_keys = [
            ("backend", be.clone()),
            ("backend-id", format!("{}", v.back)),
            ("virtual-device", format!("{VBD_DEVID}")),
            ("device-type", "disk".into()),
            ("state", "1".into()),
        ];
        for (k, val) in &fe_keys {
            write(store, &format!("{fe}/{k}"), val)?;
        }
    }
    Ok(())
}

/// One client domain's ring.
#[derive(Debug)]
pub struct Conn<P> {
    pub domid: u16,
    pub port: u32,
    pub page: P,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    /// Dropped: the domain is gone or broke the protocol.
    pub dead: bool,
    pub requests: u64,
}

/// Why a connection was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drop {
    /// The peer published an index past the ring.
    Overrun,
    /// A message header the protocol does not allow (e.g. a length over 4096).
    BadMessage,
    /// Replies piled up unread.
    NotReading,
}

/// xenstored over the clients' rings.
#[derive(Debug)]
pub struct Server<P> {
    pub store: Store,
    pub conns: Vec<Conn<P>>,
}

impl<P: Page> Server<P> {
    pub fn new(store: Store) -> Self {
        Server { store, conns: Vec::new() }
    }

    /// Serves `page` as domain `domid`'s ring (`port`: our end of its store channel).
    pub fn add(&mut self, domid: u16, port: u32, page: P) {
        server_ring::init(&page);
        self.conns.push(Conn { domid, port, page, inbox: Vec::new(), outbox: Vec::new(), dead: false, requests: 0 });
    }

    fn queue(&mut self, o: Outgoing) {
        if let Some(c) = self.conns.iter_mut().find(|c| ConnId::from(c.domid) == o.conn && !c.dead) {
            server_ring::queue_message(&mut c.outbox, &o.header, &o.payload);
        }
    }

    /// Takes what every live client sent, answers it and writes what fits of the replies
    /// and watch events. Returns the ports to notify (bytes moved on their ring) and the
    /// connections dropped in this pass.
    pub fn step(&mut self) -> (Vec<u32>, Vec<(u16, Drop)>) {
        let mut dropped = Vec::new();
        let mut moved = Vec::new();
        for i in 0..self.conns.len() {
            if self.conns[i].dead {
                continue;
            }
            let c = &mut self.conns[i];
            match server_ring::take_requests(&c.page, &mut c.inbox) {
                Ok(0) => {}
                Ok(_) => moved.push(i),
                Err(_) => {
                    dropped.push((c.domid, Drop::Overrun));
                    self.drop_conn(i);
                    continue;
                }
            }
            loop {
                let c = &mut self.conns[i];
                let (h, payload) = match server_ring::next_message(&mut c.inbox) {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(_) => {
                        dropped.push((c.domid, Drop::BadMessage));
                        self.drop_conn(i);
                        break;
                    }
                };
                c.requests += 1;
                let who = Caller { conn: ConnId::from(c.domid), domid: u32::from(c.domid), privileged: false };
                let (out, _) = self.store.handle(who, h, &payload);
                for o in out {
                    self.queue(o);
                }
            }
        }
        for (i, c) in self.conns.iter_mut().enumerate().filter(|(_, c)| !c.dead && !c.outbox.is_empty()) {
            match server_ring::put_replies(&c.page, &mut c.outbox) {
                Ok(0) => {}
                Ok(_) => moved.push(i),
                Err(_) => {
                    dropped.push((c.domid, Drop::Overrun));
                    c.dead = true;
                }
            }
            if c.outbox.len() > OUTBOX_MAX {
                dropped.push((c.domid, Drop::NotReading));
                c.dead = true;
            }
        }
        for &(domid, _) in &dropped {
            self.store.drop_conn(ConnId::from(domid));
        }
        moved.sort_unstable();
        moved.dedup();
        let ports = moved.into_iter().filter(|&i| !self.conns[i].dead).map(|i| self.conns[i].port).collect();
        (ports, dropped)
    }

    fn drop_conn(&mut self, i: usize) {
        let c = &mut self.conns[i];
        c.dead = true;
        c.inbox.clear();
        c.outbox.clear();
        self.store.drop_conn(ConnId::from(c.domid));
    }

    /// Domain `domid` is gone: its connection, watches and transactions go, and
    /// `@releaseDomain` fires (as when the toolstack releases a dead domain).
    pub fn gone(&mut self, domid: u16) {
        if let Some(i) = self.conns.iter().position(|c| c.domid == domid) {
            self.drop_conn(i);
        }
        let payload = Request::Release { domid: u32::from(domid) }.to_payload();
        let h = Header::new(xenstore_wire::XsType::Release, 0, 0, payload.len());
        let (out, _) = self.store.handle(TOOLSTACK, h, &payload);
        for o in out.into_iter().skip(1) {
            self.queue(o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use core::mem::offset_of;
    use frontend_drivers::xenstore::{XenStore, NO_TX};
    use frontend_drivers::{Notify, SharedPage};
    use std::rc::Rc;
    use xenstore_wire::XenstoreDomainInterface as Iface;

    /// A ring page both ends share; the client's waits run the server.
    #[derive(Clone)]
    struct Mem(Rc<RefCell<Vec<u8>>>);

    impl Page for Mem {
        fn load_u32(&self, off: usize) -> u32 {
            u32::from_le_bytes(self.0.borrow()[off..off + 4].try_into().unwrap())
        }
        fn store_u32(&self, off: usize, v: u32) {
            self.0.borrow_mut()[off..off + 4].copy_from_slice(&v.to_le_bytes())
        }
        fn read(&self, off: usize, buf: &mut [u8]) {
            buf.copy_from_slice(&self.0.borrow()[off..off + buf.len()])
        }
        fn write(&self, off: usize, data: &[u8]) {
            self.0.borrow_mut()[off..off + data.len()].copy_from_slice(data)
        }
    }

    impl SharedPage for Mem {
        fn load_u32(&self, off: usize) -> u32 {
            Page::load_u32(self, off)
        }
        fn store_u32(&self, off: usize, v: u32) {
            Page::store_u32(self, off, v)
        }
        fn read(&self, off: usize, buf: &mut [u8]) {
            Page::read(self, off, buf)
        }
        fn write(&self, off: usize, data: &[u8]) {
            Page::write(self, off, data)
        }
    }

    struct Kick(Rc<RefCell<Server<Mem>>>);

    impl Notify for Kick {
        fn notify(&self) {}
        fn wait(&self) -> bool {
            self.0.borrow_mut().step();
            true
        }
    }

    fn setup() -> (Rc<RefCell<Server<Mem>>>, Mem, Mem) {
        let mut store = Store::new();
        let vbd = Vbd { front: 2, back: 1 };
        toolstack_setup(&mut store, &[(1, "blkback"), (2, "blkfront")], &[vbd]).unwrap();
        let srv = Rc::new(RefCell::new(Server::new(store)));
        let (p1, p2) = (Mem(Rc::new(RefCell::new(vec![0; 4096]))), Mem(Rc::new(RefCell::new(vec![0; 4096]))));
        srv.borrow_mut().add(1, 101, p1.clone());
        srv.borrow_mut().add(2, 102, p2.clone());
        (srv, p1, p2)
    }

    #[test]
    fn parses_command_line_lists() {
        assert_eq!(parse_domids("1,2,x,3"), [1, 2, 3]);
        assert_eq!(parse_vbds("2:1,bad,3:1"), [Vbd { front: 2, back: 1 }, Vbd { front: 3, back: 1 }]);
    }

    #[test]
    fn clients_see_their_home_and_the_device_with_libxl_permissions() {
        let (srv, p1, p2) = setup();
        let mut be = XenStore::new(p1, Kick(srv.clone()));
        let mut fe = XenStore::new(p2, Kick(srv.clone()));
        let mut buf = [0u8; 128];
        let n = fe.read(NO_TX, "domid", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"2");
        let n = fe.read(NO_TX, "device/vbd/51712/backend", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"/local/domain/1/backend/vbd/2/51712");
        // The front-end reads the back-end's directory but can't write it.
        let n = fe.read(NO_TX, "/local/domain/1/backend/vbd/2/51712/state", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"1");
        assert!(fe.write(NO_TX, "/local/domain/1/backend/vbd/2/51712/state", b"4").is_err());
        // A key the front-end creates is readable by the back-end.
        fe.write(NO_TX, "device/vbd/51712/ring-ref", b"8").unwrap();
        let n = be.read(NO_TX, "/local/domain/2/device/vbd/51712/ring-ref", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"8");
        // ...but nothing else of the front-end's home.
        fe.write(NO_TX, "data/secret", b"x").unwrap();
        assert!(be.read(NO_TX, "/local/domain/2/data/secret", &mut buf).is_err());
        // Watches: the back-end watches its directory, the front-end's write fires it.
        be.watch("backend/vbd", "be").unwrap();
        let ev = be.next_event().unwrap();
        assert_eq!(ev.path(), b"backend/vbd");
        be.watch("/local/domain/2/device/vbd/51712/state", "fe").unwrap();
        be.next_event().unwrap();
        fe.write(NO_TX, "device/vbd/51712/state", b"3").unwrap();
        let ev = be.next_event().unwrap();
        assert_eq!((ev.path(), ev.token()), (&b"/local/domain/2/device/vbd/51712/state"[..], &b"fe"[..]));
    }

    #[test]
    fn hostile_indices_and_headers_drop_only_that_client() {
        let (srv, p1, p2) = setup();
        // Client 2 claims 5000 bytes of requests.
        Page::store_u32(&p2, offset_of!(Iface, req_prod), 5000);
        let (_, dropped) = srv.borrow_mut().step();
        assert_eq!(dropped, [(2, Drop::Overrun)]);
        // Client 1 still works.
        let mut be = XenStore::new(p1.clone(), Kick(srv.clone()));
        let mut buf = [0u8; 16];
        assert_eq!(be.read(NO_TX, "domid", &mut buf), Ok(1));
        // A header with a length past the protocol's maximum.
        let mut h = Header::new(xenstore_wire::XsType::Read, 1, 0, 0).encode();
        h[12..16].copy_from_slice(&9000u32.to_le_bytes());
        let prod = Page::load_u32(&p1, offset_of!(Iface, req_prod));
        Page::write(&p1, offset_of!(Iface, req) + (prod as usize % 1024), &h);
        Page::store_u32(&p1, offset_of!(Iface, req_prod), prod + 16);
        let (_, dropped) = srv.borrow_mut().step();
        assert_eq!(dropped, [(1, Drop::BadMessage)]);
    }

    #[test]
    fn a_gone_client_loses_its_watches_and_release_fires() {
        let (srv, p1, _p2) = setup();
        let mut be = XenStore::new(p1, Kick(srv.clone()));
        be.watch("@releaseDomain", "r").unwrap();
        be.next_event().unwrap();
        srv.borrow_mut().gone(2);
        let ev = be.next_event().unwrap();
        assert_eq!(ev.path(), b"@releaseDomain");
    }
}
