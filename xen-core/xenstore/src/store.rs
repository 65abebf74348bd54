//! xenstored's state, free of I/O: the node tree with permissions, watches, transactions
//! and the introduced domains. [`Store::handle`] takes one request from one connection
//! and returns the messages to send (the reply and any watch events) plus what the I/O
//! layer must do (map a ring for `XS_INTRODUCE`, drop one for `XS_RELEASE`).
//!
//! `no_std` + `alloc`: shared by dom0's xenstored (Linux) and pv-guest's xenstore
//! service domain on xen-core.

use crate::path::{self, INTRODUCE_DOMAIN, RELEASE_DOMAIN};
use crate::perms::{self, Perm, PermKind};
use crate::{reply, Errno, Header, Request, XsType};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

/// A connection: a unix-socket client in dom0 or a domain's ring.
pub type ConnId = u32;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub value: Vec<u8>,
    pub perms: Vec<Perm>,
    /// Generation of the last change (for transaction conflict checks).
    pub gen: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Watch {
    conn: ConnId,
    /// As registered (relative paths are reported back relative).
    path: String,
    abs: String,
    token: Vec<u8>,
    domid: u32,
    /// Sees every change (dom0's clients); others only changes to nodes they may read.
    privileged: bool,
}

#[derive(Debug)]
struct Transaction {
    conn: ConnId,
    /// The tree as this transaction sees it.
    nodes: BTreeMap<String, Node>,
    /// Generation of every path this transaction read or wrote, as it first saw it
    /// (`None`: absent).
    seen: BTreeMap<String, Option<u64>>,
    /// Paths it changed (written, created or removed), for the commit.
    changed: BTreeSet<String>,
}

/// What a connection is, as `handle` needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub conn: ConnId,
    pub domid: u32,
    /// dom0's socket clients and ring: permission checks do not apply.
    pub privileged: bool,
}

/// A message for a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub conn: ConnId,
    pub header: Header,
    pub payload: Vec<u8>,
}

/// Work for the I/O layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Map `mfn` of `domid`, bind `port`, and serve it as a new connection.
    Introduce { domid: u32, mfn: u64, port: u32 },
    /// Drop the ring connection of `domid`.
    Release { domid: u32 },
}

#[derive(Debug, Default)]
pub struct Store {
    nodes: BTreeMap<String, Node>,
    gen: u64,
    watches: Vec<Watch>,
    transactions: BTreeMap<u32, Transaction>,
    next_tx: u32,
    /// Introduced domains: domid -> (mfn, port).
    domains: BTreeMap<u32, (u64, u32)>,
}

/// Most transactions one connection may hold open (Xen's default quota is 10).
const MAX_TX_PER_CONN: usize = 10;
/// Most watches per connection (Xen's default quota is 128).
const MAX_WATCHES_PER_CONN: usize = 128;

fn dom0_perms() -> Vec<Perm> {
    vec![Perm::new(PermKind::None, 0)]
}

fn utf8(b: &[u8]) -> Result<&str, Errno> {
    core::str::from_utf8(b).map_err(|_| Errno::EINVAL)
}

impl Store {
    /// The tree xenstored starts with: `/`, `/tool`, `/tool/xenstored` (owned by dom0).
    pub fn new() -> Self {
        let mut s = Store { next_tx: 1, ..Default::default() };
        for p in ["/", "/tool", "/tool/xenstored"] {
            s.nodes.insert(p.into(), Node { value: Vec::new(), perms: dom0_perms(), gen: 0 });
        }
        s
    }

    pub fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    pub fn is_introduced(&self, domid: u32) -> bool {
        self.domains.contains_key(&domid)
    }

    /// A connection went away: its watches and transactions go with it.
    pub fn drop_conn(&mut self, conn: ConnId) {
        self.watches.retain(|w| w.conn != conn);
        self.transactions.retain(|_, t| t.conn != conn);
    }

    /// Answers one request.
    pub fn handle(&mut self, who: Caller, h: Header, payload: &[u8]) -> (Vec<Outgoing>, Option<Action>) {
        let mut out = Vec::new();
        let mut fired = Vec::new();
        let mut action = None;
        let result = self.dispatch(who, h, payload, &mut fired, &mut action, &mut out);
        match result {
            Ok(body) => {
                let ty = h.msg_type().unwrap_or(XsType::Error);
                out.insert(0, Outgoing { conn: who.conn, header: h.reply(ty, body.len()), payload: body });
            }
            Err(e) => {
                let mut b = [0u8; 16];
                let n = reply::error_payload(e, &mut b);
                out.insert(0, Outgoing { conn: who.conn, header: h.reply(XsType::Error, n), payload: b[..n].to_vec() });
                action = None;
            }
        }
        for (p, rm) in fired {
            self.fire(&p, rm, &mut out);
        }
        (out, action)
    }

    fn dispatch(
        &mut self,
        who: Caller,
        h: Header,
        payload: &[u8],
        fired: &mut Vec<(String, bool)>,
        action: &mut Option<Action>,
        out: &mut Vec<Outgoing>,
    ) -> Result<Vec<u8>, Errno> {
        let ty = h.msg_type().map_err(|e| e.errno())?;
        let req = Request::parse(ty, payload).map_err(|e| e.errno())?;
        let tx = h.tx_id;
        if tx != 0 {
            match self.transactions.get(&tx) {
                Some(t) if t.conn == who.conn => {}
                _ => return Err(Errno::ENOENT),
            }
        }
        let resolve = |p: &[u8]| path::resolve(p, who.domid, false);
        let ok = || Ok(reply::OK.to_vec());
        match req {
            Request::Read { path } => {
                let p = resolve(path)?;
                let n = self.get(tx, &p)?;
                self.check(who, &n, PermKind::Read)?;
                Ok(n.value)
            }
            Request::GetPerms { path } => {
                let p = resolve(path)?;
                let n = self.get(tx, &p)?;
                self.check(who, &n, PermKind::Read)?;
                Ok(perms::encode_list(&n.perms))
            }
            Request::Directory { path } => {
                let p = resolve(path)?;
                let n = self.get(tx, &p)?;
                self.check(who, &n, PermKind::Read)?;
                let mut body = Vec::new();
                for c in self.children(tx, &p) {
                    body.extend_from_slice(c.as_bytes());
                    body.push(0);
                }
                Ok(body)
            }
            Request::DirectoryPart { path, offset } => {
                let p = resolve(path)?;
                let n = self.get(tx, &p)?;
                self.check(who, &n, PermKind::Read)?;
                let mut all = Vec::new();
                for c in self.children(tx, &p) {
                    all.extend_from_slice(c.as_bytes());
                    all.push(0);
                }
                // Reply: generation, then the names from `offset`, an empty name at the end.
                let mut body = n.gen.to_string().into_bytes();
                body.push(0);
                let start = usize::try_from(offset).map_err(|_| Errno::EINVAL)?;
                if start > all.len() {
                    return Err(Errno::EINVAL);
                }
                let room = crate::XENSTORE_PAYLOAD_MAX - body.len() - 1;
                let mut part = &all[start..];
                if part.len() > room {
                    let cut = part[..room].iter().rposition(|&b| b == 0).map_or(0, |i| i + 1);
                    part = &part[..cut];
                    body.extend_from_slice(part);
                } else {
                    body.extend_from_slice(part);
                    body.push(0);
                }
                Ok(body)
            }
            Request::Write { path, value } => {
                let p = resolve(path)?;
                self.set(who, tx, &p, Some(value.to_vec()), fired)?;
                ok()
            }
            Request::Mkdir { path } => {
                let p = resolve(path)?;
                if self.get(tx, &p).is_err() {
                    self.set(who, tx, &p, None, fired)?;
                }
                ok()
            }
            Request::Rm { path } => {
                let p = resolve(path)?;
                self.remove(who, tx, &p, fired)?;
                ok()
            }
            Request::SetPerms { path, perms } => {
                let p = resolve(path)?;
                let list = perms::parse_vec(perms)?;
                let mut n = self.get(tx, &p)?;
                // Only the owner (or dom0) may change permissions.
                if !who.privileged && n.perms.first().map(|f| u32::from(f.domid)) != Some(who.domid) {
                    return Err(Errno::EACCES);
                }
                n.perms = list;
                self.put(tx, &p, n);
                fired.push((p, false));
                ok()
            }
            Request::Watch { path, token } => {
                let raw = utf8(path)?.to_string();
                let abs = path::resolve(path, who.domid, true)?;
                if self.watches.iter().any(|w| w.conn == who.conn && w.abs == abs && w.token == token) {
                    return Err(Errno::EEXIST);
                }
                if self.watches.iter().filter(|w| w.conn == who.conn).count() >= MAX_WATCHES_PER_CONN {
                    return Err(Errno::E2BIG);
                }
                let w = Watch { conn: who.conn, path: raw, abs, token: token.to_vec(), domid: who.domid, privileged: who.privileged };
                // Fires once at once, after the reply.
                out.push(Self::event(&w, &w.path));
                self.watches.push(w);
                ok()
            }
            Request::Unwatch { path, token } => {
                let abs = path::resolve(path, who.domid, true)?;
                let before = self.watches.len();
                self.watches.retain(|w| !(w.conn == who.conn && w.abs == abs && w.token == token));
                if self.watches.len() == before {
                    return Err(Errno::ENOENT);
                }
                ok()
            }
            Request::ResetWatches => {
                self.watches.retain(|w| w.conn != who.conn);
                ok()
            }
            Request::TransactionStart => {
                if tx != 0 {
                    return Err(Errno::EBUSY);
                }
                if self.transactions.values().filter(|t| t.conn == who.conn).count() >= MAX_TX_PER_CONN {
                    return Err(Errno::ENOSPC);
                }
                let id = self.next_tx;
                self.next_tx = self.next_tx.wrapping_add(1).max(1);
                let t = Transaction { conn: who.conn, nodes: self.nodes.clone(), seen: BTreeMap::new(), changed: BTreeSet::new() };
                self.transactions.insert(id, t);
                let mut body = id.to_string().into_bytes();
                body.push(0);
                Ok(body)
            }
            Request::TransactionEnd { commit } => {
                let t = self.transactions.remove(&tx).ok_or(Errno::ENOENT)?;
                if commit {
                    self.commit(t, fired)?;
                }
                ok()
            }
            Request::GetDomainPath { domid } => {
                let mut body = path::domain_path(domid).into_bytes();
                body.push(0);
                Ok(body)
            }
            Request::IsDomainIntroduced { domid } => {
                Ok(if domid == 0 || self.domains.contains_key(&domid) { b"T\0".to_vec() } else { b"F\0".to_vec() })
            }
            Request::Introduce { domid, mfn, port } => {
                if !who.privileged {
                    return Err(Errno::EACCES);
                }
                if domid == 0 {
                    return Err(Errno::EINVAL);
                }
                if let Some(&(m, p)) = self.domains.get(&domid) {
                    // Xen accepts a repeated introduction with the same ring.
                    return if (m, p) == (mfn, port) { ok() } else { Err(Errno::EEXIST) };
                }
                self.domains.insert(domid, (mfn, port));
                *action = Some(Action::Introduce { domid, mfn, port });
                fired.push((INTRODUCE_DOMAIN.into(), false));
                ok()
            }
            Request::Release { domid } => {
                if !who.privileged {
                    return Err(Errno::EACCES);
                }
                self.domains.remove(&domid).ok_or(Errno::ENOENT)?;
                *action = Some(Action::Release { domid });
                fired.push((RELEASE_DOMAIN.into(), false));
                ok()
            }
            Request::Resume { domid } => {
                if !who.privileged {
                    return Err(Errno::EACCES);
                }
                if self.domains.contains_key(&domid) {
                    ok()
                } else {
                    Err(Errno::ENOENT)
                }
            }
            Request::SetTarget { .. } => {
                if who.privileged {
                    ok()
                } else {
                    Err(Errno::EACCES)
                }
            }
            Request::Control(_) => Err(Errno::ENOSYS),
        }
    }

    /// The domain's connection went away (released or dead): forget its watches.
    pub fn forget_domain_watches(&mut self, conn: ConnId) {
        self.drop_conn(conn);
    }

    /// Records that the I/O layer failed to set a domain up.
    pub fn introduce_failed(&mut self, domid: u32) {
        self.domains.remove(&domid);
    }

    fn view(&self, tx: u32) -> &BTreeMap<String, Node> {
        match self.transactions.get(&tx) {
            Some(t) if tx != 0 => &t.nodes,
            _ => &self.nodes,
        }
    }

    fn note_seen(&mut self, tx: u32, p: &str) {
        if tx == 0 {
            return;
        }
        let gen = self.nodes.get(p).map(|n| n.gen);
        if let Some(t) = self.transactions.get_mut(&tx) {
            // What the transaction's snapshot had (not the live tree) counts.
            let snap = t.nodes.get(p).map(|n| n.gen);
            let _ = gen;
            t.seen.entry(p.to_string()).or_insert(snap);
        }
    }

    fn get(&mut self, tx: u32, p: &str) -> Result<Node, Errno> {
        self.note_seen(tx, p);
        self.view(tx).get(p).cloned().ok_or(Errno::ENOENT)
    }

    fn children(&self, tx: u32, p: &str) -> Vec<String> {
        let prefix = if p == "/" { "/".to_string() } else { format!("{p}/") };
        let mut v: Vec<String> = self
            .view(tx)
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let rest = &k[prefix.len()..];
                (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
            })
            .collect();
        v.dedup();
        v
    }

    fn put(&mut self, tx: u32, p: &str, mut n: Node) {
        self.gen += 1;
        n.gen = self.gen;
        if tx == 0 {
            self.nodes.insert(p.to_string(), n);
        } else {
            self.note_seen(tx, p);
            let t = self.transactions.get_mut(&tx).expect("checked by dispatch");
            t.nodes.insert(p.to_string(), n);
            t.changed.insert(p.to_string());
        }
    }

    fn can(&self, who: Caller, n: &Node, want: PermKind) -> bool {
        if who.privileged {
            return true;
        }
        let Ok(domid) = u16::try_from(who.domid) else { return false };
        let got = perms::access(&n.perms, domid);
        match want {
            PermKind::Read => got.can_read(),
            PermKind::Write => got.can_write(),
            PermKind::Both => got.can_read() && got.can_write(),
            PermKind::None => true,
        }
    }

    fn check(&self, who: Caller, n: &Node, want: PermKind) -> Result<(), Errno> {
        if self.can(who, n, want) {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// Writes (`Some`) or creates empty (`None`) the node at `p`, creating missing
    /// parents; new nodes inherit their parent's permissions, owned by an unprivileged
    /// creator.
    fn set(&mut self, who: Caller, tx: u32, p: &str, value: Option<Vec<u8>>, fired: &mut Vec<(String, bool)>) -> Result<(), Errno> {
        if p.starts_with('@') {
            return Err(Errno::EINVAL);
        }
        if let Ok(mut n) = self.get(tx, p) {
            self.check(who, &n, PermKind::Write)?;
            n.value = value.unwrap_or_default();
            self.put(tx, p, n);
            fired.push((p.to_string(), false));
            return Ok(());
        }
        // Find the nearest existing ancestor; it must be writable.
        let mut missing = vec![p.to_string()];
        let mut cur = p;
        let base = loop {
            let par = path::parent(cur).ok_or(Errno::EINVAL)?;
            match self.get(tx, par) {
                Ok(n) => break n,
                Err(_) => {
                    missing.push(par.to_string());
                    cur = par;
                }
            }
        };
        self.check(who, &base, PermKind::Write)?;
        let mut perms = base.perms.clone();
        if !who.privileged {
            if let (Some(first), Ok(d)) = (perms.first_mut(), u16::try_from(who.domid)) {
                first.domid = d;
            }
        }
        let value = value.unwrap_or_default();
        for (i, m) in missing.iter().rev().enumerate() {
            let v = if i == missing.len() - 1 { value.clone() } else { Vec::new() };
            self.put(tx, m, Node { value: v, perms: perms.clone(), gen: 0 });
            fired.push((m.clone(), false));
        }
        Ok(())
    }

    fn remove(&mut self, who: Caller, tx: u32, p: &str, fired: &mut Vec<(String, bool)>) -> Result<(), Errno> {
        if p == "/" {
            return Err(Errno::EINVAL);
        }
        let n = match self.get(tx, p) {
            Ok(n) => n,
            Err(e) => {
                // Removing a missing node whose parent exists is fine (Xen returns OK).
                let par = path::parent(p).ok_or(Errno::EINVAL)?;
                return if self.get(tx, par).is_ok() { Ok(()) } else { Err(e) };
            }
        };
        self.check(who, &n, PermKind::Write)?;
        let prefix = format!("{p}/");
        let doomed: Vec<String> = self
            .view(tx)
            .range(p.to_string()..)
            .take_while(|(k, _)| k.as_str() == p || k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .filter(|k| k == p || k.starts_with(&prefix))
            .collect();
        self.gen += 1;
        for k in &doomed {
            self.note_seen(tx, k);
            if tx == 0 {
                self.nodes.remove(k);
            } else {
                let t = self.transactions.get_mut(&tx).expect("checked by dispatch");
                t.nodes.remove(k);
                t.changed.insert(k.clone());
            }
        }
        fired.push((p.to_string(), true));
        Ok(())
    }

    fn commit(&mut self, t: Transaction, fired: &mut Vec<(String, bool)>) -> Result<(), Errno> {
        // Conflict: something the transaction looked at changed since its snapshot.
        for (p, seen) in &t.seen {
            if self.nodes.get(p).map(|n| n.gen) != *seen {
                return Err(Errno::EAGAIN);
            }
        }
        for p in &t.changed {
            match t.nodes.get(p) {
                Some(n) => {
                    self.gen += 1;
                    let mut n = n.clone();
                    n.gen = self.gen;
                    self.nodes.insert(p.clone(), n);
                    fired.push((p.clone(), false));
                }
                None => {
                    if self.nodes.remove(p).is_some() {
                        fired.push((p.clone(), true));
                    }
                }
            }
        }
        Ok(())
    }

    fn event(w: &Watch, abs_path: &str) -> Outgoing {
        // Relative registrations get relative paths back.
        let shown = if w.path.starts_with('/') || w.path.starts_with('@') {
            abs_path.to_string()
        } else {
            let base = format!("{}/", path::domain_path(w.domid));
            abs_path.strip_prefix(&base).unwrap_or(abs_path).to_string()
        };
        let mut payload = shown.into_bytes();
        payload.push(0);
        payload.extend_from_slice(&w.token);
        payload.push(0);
        Outgoing { conn: w.conn, header: Header::new(XsType::WatchEvent, 0, 0, payload.len()), payload }
    }

    /// Watch events for a change at `p` (and, for removals, below it).
    fn fire(&self, p: &str, removed: bool, out: &mut Vec<Outgoing>) {
        for w in &self.watches {
            let hit = path::is_at_or_below(p, &w.abs) || (removed && path::is_at_or_below(&w.abs, p)) || w.abs == p;
            if !hit {
                continue;
            }
            if p.starts_with('@') != w.abs.starts_with('@') {
                continue;
            }
            // As xenstored: a change is only reported to a watcher that may read the node
            // (removals, whose node is gone, are reported to every matching watch).
            if !removed && !p.starts_with('@') && !w.privileged {
                let who = Caller { conn: w.conn, domid: w.domid, privileged: false };
                if !self.nodes.get(p).is_some_and(|n| self.can(who, n, PermKind::Read)) {
                    continue;
                }
            }
            let shown = if removed && path::is_at_or_below(&w.abs, p) && w.abs != p { w.abs.clone() } else { p.to_string() };
            out.push(Self::event(w, &shown));
        }
    }

    /// Every node below `/local/domain/<domid>` (used by tests and checks).
    pub fn domain_nodes(&self, domid: u32) -> usize {
        let base = path::domain_path(domid);
        self.nodes.keys().filter(|k| path::is_at_or_below(k, &base)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    const DOM0: Caller = Caller { conn: 1, domid: 0, privileged: true };
    const GUEST: Caller = Caller { conn: 2, domid: 5, privileged: false };

    fn req(s: &mut Store, who: Caller, tx: u32, r: Request<'_>) -> (Vec<Outgoing>, Option<Action>) {
        let payload = r.to_payload();
        s.handle(who, Header::new(r.msg_type(), 9, tx, payload.len()), &payload)
    }

    fn ok_body(s: &mut Store, who: Caller, tx: u32, r: Request<'_>) -> Vec<u8> {
        let (out, _) = req(s, who, tx, r);
        assert_ne!(out[0].header.ty, u32::from(XsType::Error), "{:?}", String::from_utf8_lossy(&out[0].payload));
        out[0].payload.clone()
    }

    fn err(s: &mut Store, who: Caller, tx: u32, r: Request<'_>) -> Errno {
        let (out, _) = req(s, who, tx, r);
        assert_eq!(out[0].header.ty, u32::from(XsType::Error));
        reply::error_from_payload(&out[0].payload)
    }

    #[test]
    fn read_write_mkdir_rm_directory() {
        let mut s = Store::new();
        ok_body(&mut s, DOM0, 0, Request::Write { path: b"/a/b/c", value: b"v" });
        assert_eq!(ok_body(&mut s, DOM0, 0, Request::Read { path: b"/a/b/c" }), b"v");
        assert_eq!(ok_body(&mut s, DOM0, 0, Request::Read { path: b"/a/b" }), b"");
        ok_body(&mut s, DOM0, 0, Request::Mkdir { path: b"/a/d" });
        assert_eq!(ok_body(&mut s, DOM0, 0, Request::Directory { path: b"/a" }), b"b\0d\0");
        assert_eq!(ok_body(&mut s, DOM0, 0, Request::Directory { path: b"/" }), b"a\0tool\0");
        ok_body(&mut s, DOM0, 0, Request::Rm { path: b"/a/b" });
        assert_eq!(err(&mut s, DOM0, 0, Request::Read { path: b"/a/b/c" }), Errno::ENOENT);
        ok_body(&mut s, DOM0, 0, Request::Rm { path: b"/a/zz" });
        assert_eq!(err(&mut s, DOM0, 0, Request::Rm { path: b"/q/zz" }), Errno::ENOENT);
        assert_eq!(err(&mut s, DOM0, 0, Request::Read { path: b"/a//b" }), Errno::EINVAL);
        let (out, _) = s.handle(DOM0, Header { ty: 20, req_id: 1, tx_id: 0, len: 0 }, b"");
        assert_eq!(reply::error_from_payload(&out[0].payload), Errno::ENOSYS);
    }

    #[test]
    fn permissions_per_domain() {
        let mut s = Store::new();
        ok_body(&mut s, DOM0, 0, Request::Write { path: b"/local/domain/5/name", value: b"g" });
        // dom0-owned, no access for others.
        assert_eq!(err(&mut s, GUEST, 0, Request::Read { path: b"name" }), Errno::EACCES);
        ok_body(&mut s, DOM0, 0, Request::SetPerms { path: b"/local/domain/5", perms: b"n5\0" });
        ok_body(&mut s, DOM0, 0, Request::SetPerms { path: b"/local/domain/5/name", perms: b"n0\0r5\0" });
        assert_eq!(ok_body(&mut s, GUEST, 0, Request::Read { path: b"name" }), b"g");
        assert_eq!(err(&mut s, GUEST, 0, Request::Write { path: b"name", value: b"x" }), Errno::EACCES);
        // The guest owns its home: it may create below it, and owns what it creates.
        ok_body(&mut s, GUEST, 0, Request::Write { path: b"data/x", value: b"1" });
        assert_eq!(ok_body(&mut s, DOM0, 0, Request::GetPerms { path: b"/local/domain/5/data/x" }), b"n5\0");
        assert_eq!(err(&mut s, GUEST, 0, Request::Write { path: b"/tool/x", value: b"1" }), Errno::EACCES);
        assert_eq!(err(&mut s, GUEST, 0, Request::SetPerms { path: b"name", perms: b"b5\0" }), Errno::EACCES);
        assert_eq!(err(&mut s, GUEST, 0, Request::Introduce { domid: 7, mfn: 1, port: 1 }), Errno::EACCES);
    }

    #[test]
    fn watches_fire_on_registration_and_changes() {
        let mut s = Store::new();
        let (out, _) = req(&mut s, DOM0, 0, Request::Watch { path: b"/a", token: b"t" });
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].header.ty, u32::from(XsType::WatchEvent));
        assert_eq!(out[1].payload, b"/a\0t\0");
        let (out, _) = req(&mut s, DOM0, 0, Request::Write { path: b"/a/b", value: b"1" });
        let evs: Vec<&[u8]> = out[1..].iter().map(|o| &o.payload[..]).collect();
        assert_eq!(evs, [&b"/a\0t\0"[..], b"/a/b\0t\0"]);
        let (out, _) = req(&mut s, DOM0, 0, Request::Write { path: b"/ab", value: b"1" });
        assert_eq!(out.len(), 1);
        // Relative watches report relative paths.
        ok_body(&mut s, DOM0, 0, Request::Write { path: b"/local/domain/5/x", value: b"" });
        ok_body(&mut s, DOM0, 0, Request::SetPerms { path: b"/local/domain/5", perms: b"n5\0" });
        let (out, _) = req(&mut s, GUEST, 0, Request::Watch { path: b"x", token: b"g" });
        assert_eq!(out[1].payload, b"x\0g\0");
        let (out, _) = req(&mut s, DOM0, 0, Request::Rm { path: b"/local/domain/5" });
        assert!(out.iter().any(|o| o.conn == 2 && o.payload == b"x\0g\0"), "{out:?}");
        assert_eq!(err(&mut s, DOM0, 0, Request::Unwatch { path: b"/nope", token: b"t" }), Errno::ENOENT);
        ok_body(&mut s, DOM0, 0, Request::Unwatch { path: b"/a", token: b"t" });
        let (out, _) = req(&mut s, DOM0, 0, Request::Write { path: b"/a/b", value: b"2" });
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn watch_events_only_for_readable_nodes() {
        let mut s = Store::new();
        ok_body(&mut s, DOM0, 0, Request::Mkdir { path: b"/local/domain/5" });
        ok_body(&mut s, DOM0, 0, Request::SetPerms { path: b"/local/domain/5", perms: b"n5\0" });
        let (out, _) = req(&mut s, GUEST, 0, Request::Watch { path: b"/", token: b"all" });
        assert_eq!(out.len(), 2); // the registration event
        // A dom0-only node: the guest hears nothing.
        let (out, _) = req(&mut s, DOM0, 0, Request::Write { path: b"/tool/secret", value: b"x" });
        assert_eq!(out.len(), 1, "{out:?}");
        // Its own home: it does.
        let (out, _) = req(&mut s, DOM0, 0, Request::Write { path: b"/local/domain/5/x", value: b"1" });
        assert!(out.iter().any(|o| o.conn == 2 && o.payload == b"/local/domain/5/x\0all\0"), "{out:?}");
        // Removals are reported to every matching watch.
        let (out, _) = req(&mut s, DOM0, 0, Request::Rm { path: b"/tool/secret" });
        assert!(out.iter().any(|o| o.conn == 2), "{out:?}");
    }

    #[test]
    fn transactions_isolate_and_detect_conflicts() {
        let mut s = Store::new();
        ok_body(&mut s, DOM0, 0, Request::Write { path: b"/k", value: b"0" });
        let tx: u32 = String::from_utf8(ok_body(&mut s, DOM0, 0, Request::TransactionStart)).unwrap().trim_end_matches('\0').parse().unwrap();
        ok_body(&mut s, DOM0, tx, Request::Write { path: b"/k", value: b"1" });
        assert_eq!(ok_body(&mut s, DOM0, 0, Request::Read { path: b"/k" }), b"0");
        assert_eq!(ok_body(&mut s, DOM0, tx, Request::Read { path: b"/k" }), b"1");
        ok_body(&mut s, DOM0, tx, Request::TransactionEnd { commit: true });
        assert_eq!(ok_body(&mut s, DOM0, 0, Request::Read { path: b"/k" }), b"1");
        // Conflict: someone else changes what the transaction read.
        let tx: u32 = String::from_utf8(ok_body(&mut s, DOM0, 0, Request::TransactionStart)).unwrap().trim_end_matches('\0').parse().unwrap();
        ok_body(&mut s, DOM0, tx, Request::Read { path: b"/k" });
        ok_body(&mut s, DOM0, tx, Request::Write { path: b"/other", value: b"x" });
        ok_body(&mut s, DOM0, 0, Request::Write { path: b"/k", value: b"2" });
        assert_eq!(err(&mut s, DOM0, tx, Request::TransactionEnd { commit: true }), Errno::EAGAIN);
        assert_eq!(err(&mut s, DOM0, 0, Request::Read { path: b"/other" }), Errno::ENOENT);
        // Unknown transaction.
        assert_eq!(err(&mut s, DOM0, 99, Request::Read { path: b"/k" }), Errno::ENOENT);
        // Abort drops writes; rm inside a transaction.
        let tx: u32 = String::from_utf8(ok_body(&mut s, DOM0, 0, Request::TransactionStart)).unwrap().trim_end_matches('\0').parse().unwrap();
        ok_body(&mut s, DOM0, tx, Request::Rm { path: b"/k" });
        ok_body(&mut s, DOM0, tx, Request::TransactionEnd { commit: false });
        assert_eq!(ok_body(&mut s, DOM0, 0, Request::Read { path: b"/k" }), b"2");
    }

    #[test]
    fn introduce_release_and_special_watches() {
        let mut s = Store::new();
        let (out, _) = req(&mut s, DOM0, 0, Request::Watch { path: b"@introduceDomain", token: b"i" });
        assert_eq!(out[1].payload, b"@introduceDomain\0i\0");
        ok_body(&mut s, DOM0, 0, Request::Watch { path: b"@releaseDomain", token: b"r" });
        let (out, act) = req(&mut s, DOM0, 0, Request::Introduce { domid: 3, mfn: 77, port: 4 });
        assert_eq!(act, Some(Action::Introduce { domid: 3, mfn: 77, port: 4 }));
        assert_eq!(out[1].payload, b"@introduceDomain\0i\0");
        assert_eq!(out.len(), 2);
        assert_eq!(ok_body(&mut s, DOM0, 0, Request::IsDomainIntroduced { domid: 3 }), b"T\0");
        assert_eq!(ok_body(&mut s, DOM0, 0, Request::GetDomainPath { domid: 3 }), b"/local/domain/3\0");
        let (out, act) = req(&mut s, DOM0, 0, Request::Release { domid: 3 });
        assert_eq!(act, Some(Action::Release { domid: 3 }));
        assert_eq!(out[1].payload, b"@releaseDomain\0r\0");
        assert_eq!(ok_body(&mut s, DOM0, 0, Request::IsDomainIntroduced { domid: 3 }), b"F\0");
        assert_eq!(err(&mut s, DOM0, 0, Request::Release { domid: 3 }), Errno::ENOENT);
    }

    #[test]
    fn directory_part_pages_large_directories() {
        let mut s = Store::new();
        for i in 0..600 {
            ok_body(&mut s, DOM0, 0, Request::Write { path: format!("/big/entry-number-{i:04}").as_bytes(), value: b"" });
        }
        let mut names = Vec::new();
        let mut off = 0u64;
        loop {
            let body = ok_body(&mut s, DOM0, 0, Request::DirectoryPart { path: b"/big", offset: off });
            let mut f = body.split(|&b| b == 0);
            f.next(); // generation
            let rest = &body[body.iter().position(|&b| b == 0).unwrap() + 1..];
            let part: Vec<&[u8]> = rest.split(|&b| b == 0).collect();
            let done = rest.ends_with(b"\0\0") || rest == b"\0";
            for n in part.iter().filter(|n| !n.is_empty()) {
                names.push(n.to_vec());
            }
            off += rest.len() as u64 - if done { 1 } else { 0 };
            if done {
                break;
            }
        }
        assert_eq!(names.len(), 600);
    }
}
