//! xenstored's event loop: a unix socket for dom0's tools, dom0's own ring (the page
//! Linux's xenfs exposes as `/proc/xen/xsd_kva`), and one ring per introduced domain,
//! mapped through privcmd and signalled through `/dev/xen/evtchn`.

use super::ring;
use super::store::{Action, Caller, ConnId, Store};
use crate::sys::{self, Evtchn, Mapping, Privcmd};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Options {
    pub socket: PathBuf,
    /// Serve dom0's ring (off for host tests without Xen).
    pub dom0_ring: bool,
    pub verbose: bool,
}

#[derive(Debug)]
enum Transport {
    Socket(UnixStream),
    Ring { page: Mapping, port: u32 },
}

#[derive(Debug)]
struct Conn {
    domid: u32,
    privileged: bool,
    transport: Transport,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    dead: bool,
}

#[derive(Debug)]
pub struct Server {
    opts: Options,
    store: Store,
    listener: UnixListener,
    evtchn: Option<Evtchn>,
    privcmd: Option<Privcmd>,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: ConnId,
}

fn log(opts: &Options, msg: impl FnOnce() -> String) {
    if opts.verbose {
        eprintln!("xenstored: {}", msg());
    }
}

impl Server {
    pub fn new(opts: Options) -> io::Result<Server> {
        if let Some(dir) = opts.socket.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(&opts.socket);
        let listener = UnixListener::bind(&opts.socket)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", opts.socket.display())))?;
        listener.set_nonblocking(true)?;
        let mut s = Server { opts, store: Store::new(), listener, evtchn: None, privcmd: None, conns: BTreeMap::new(), next_conn: 1 };
        if s.opts.dom0_ring {
            let ev = Evtchn::open()?;
            let (page, remote) = sys::dom0_store_ring()?;
            let port = ev.bind_interdomain(0, remote)?;
            ring::init(&page);
            s.evtchn = Some(ev);
            s.privcmd = Privcmd::open().ok();
            s.add(0, true, Transport::Ring { page, port });
            // Tell Linux's xenbus that xenstored is up (it probes on the first event).
            if let Some(ev) = &s.evtchn {
                ev.notify(port)?;
            }
        }
        Ok(s)
    }

    fn add(&mut self, domid: u32, privileged: bool, transport: Transport) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(id, Conn { domid, privileged, transport, inbox: Vec::new(), outbox: Vec::new(), dead: false });
        id
    }

    /// Runs until an I/O error on the listener or the event channel device.
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            self.step(1000)?;
        }
    }

    /// One round: wait up to `timeout_ms` for input, then serve everything pending.
    pub fn step(&mut self, timeout_ms: i32) -> io::Result<()> {
        let mut fds = vec![self.listener.as_raw_fd()];
        if let Some(ev) = &self.evtchn {
            fds.push(ev.fd());
        }
        let sockets: Vec<ConnId> = self.conns.iter().filter(|(_, c)| matches!(c.transport, Transport::Socket(_))).map(|(&i, _)| i).collect();
        for id in &sockets {
            if let Some(Conn { transport: Transport::Socket(s), .. }) = self.conns.get(id) {
                fds.push(s.as_raw_fd());
            }
        }
        let ready = sys::poll_readable(&fds, timeout_ms)?;
        if ready[0] {
            self.accept()?;
        }
        if let Some(ev) = &self.evtchn {
            if ready[1] {
                ev.pending()?;
            }
        }
        let base = if self.evtchn.is_some() { 2 } else { 1 };
        for (i, id) in sockets.iter().enumerate() {
            if ready[base + i] {
                self.read_socket(*id);
            }
        }
        self.read_rings();
        self.process();
        self.flush();
        self.reap();
        Ok(())
    }

    fn accept(&mut self) -> io::Result<()> {
        loop {
            match self.listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(true)?;
                    let id = self.add(0, true, Transport::Socket(s));
                    log(&self.opts, || format!("socket client {id}"));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    fn read_socket(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        let Transport::Socket(s) = &mut c.transport else { return };
        let mut buf = [0u8; 8192];
        loop {
            match s.read(&mut buf) {
                Ok(0) => {
                    c.dead = true;
                    return;
                }
                Ok(n) => c.inbox.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.dead = true;
                    return;
                }
            }
        }
    }

    fn read_rings(&mut self) {
        for c in self.conns.values_mut() {
            if let Transport::Ring { page, port } = &c.transport {
                match ring::take_requests(page, &mut c.inbox) {
                    // Room freed: a writer waiting for it continues.
                    Ok(n) if n > 0 => {
                        if let Some(ev) = &self.evtchn {
                            let _ = ev.notify(*port);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => c.dead = true,
                }
            }
        }
    }

    /// Handles every complete message in every inbox.
    fn process(&mut self) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            while let Some(c) = self.conns.get_mut(&id) {
                if c.dead {
                    break;
                }
                let (h, payload) = match ring::next_message(&mut c.inbox) {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(_) => {
                        c.dead = true;
                        break;
                    }
                };
                let kind = if matches!(c.transport, Transport::Ring { .. }) { "ring" } else { "socket" };
                let who = Caller { conn: id, domid: c.domid, privileged: c.privileged };
                let (out, action) = self.store.handle(who, h, &payload);
                log(&self.opts, || format!("conn {id} {kind} dom{} {:?} {:?} -> {} msgs", who.domid, h.msg_type(), String::from_utf8_lossy(&payload), out.len()));
                for o in out {
                    if let Some(dst) = self.conns.get_mut(&o.conn) {
                        ring::queue_message(&mut dst.outbox, &o.header, &o.payload);
                    }
                }
                if let Some(a) = action {
                    self.act(a);
                }
            }
        }
    }

    fn act(&mut self, a: Action) {
        match a {
            Action::Introduce { domid, mfn, port } => {
                let r = (|| -> io::Result<Transport> {
                    let pc = self.privcmd.as_ref().ok_or_else(|| io::Error::other("no privcmd"))?;
                    let ev = self.evtchn.as_ref().ok_or_else(|| io::Error::other("no evtchn"))?;
                    let dom = u16::try_from(domid).map_err(|_| io::Error::other("bad domid"))?;
                    let page = pc.map_foreign(dom, &[mfn])?;
                    let local = ev.bind_interdomain(domid, port)?;
                    ring::init(&page);
                    Ok(Transport::Ring { page, port: local })
                })();
                match r {
                    Ok(t) => {
                        let id = self.add(domid, false, t);
                        log(&self.opts, || format!("introduced domain {domid} as conn {id}"));
                    }
                    Err(e) => {
                        eprintln!("xenstored: introducing domain {domid} (mfn {mfn:#x}, port {port}): {e}");
                        self.store.introduce_failed(domid);
                    }
                }
            }
            Action::Release { domid } => {
                for c in self.conns.values_mut() {
                    if c.domid == domid && matches!(c.transport, Transport::Ring { .. }) {
                        c.dead = true;
                    }
                }
            }
        }
    }

    fn flush(&mut self) {
        for c in self.conns.values_mut() {
            if c.outbox.is_empty() {
                continue;
            }
            match &mut c.transport {
                Transport::Socket(s) => loop {
                    if c.outbox.is_empty() {
                        break;
                    }
                    match s.write(&c.outbox) {
                        Ok(0) => {
                            c.dead = true;
                            break;
                        }
                        Ok(n) => {
                            c.outbox.drain(..n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => {
                            c.dead = true;
                            break;
                        }
                    }
                },
                Transport::Ring { page, port } => match ring::put_replies(page, &mut c.outbox) {
                    Ok(n) => {
                        if n > 0 {
                            if let Some(ev) = &self.evtchn {
                                let _ = ev.notify(*port);
                            }
                        }
                    }
                    Err(_) => c.dead = true,
                },
            }
        }
    }

    fn reap(&mut self) {
        let dead: Vec<ConnId> = self.conns.iter().filter(|(_, c)| c.dead).map(|(&i, _)| i).collect();
        for id in dead {
            if let Some(c) = self.conns.remove(&id) {
                if let (Transport::Ring { port, .. }, Some(ev)) = (&c.transport, &self.evtchn) {
                    let _ = ev.unbind(*port);
                }
                log(&self.opts, || format!("conn {id} (dom{}) closed", c.domid));
            }
            self.store.drop_conn(id);
        }
    }
}
