//! `role=xenstored clients=1,2,.. port-base=B [vbd=F:B,..] [names=a,b,..] [hostile=4,..]`: the xenstore
//! service domain on xen-core's boot manifest. For each client D it maps D's grant
//! reference 1 (the store ring the hypervisor set up) and serves it on port B + D with
//! the shared store engine (`crate::xsd`), after creating what a toolstack would. It
//! runs until every client is gone (its port unbound), then reports. `hostile=` names
//! clients expected to break the protocol (and be dropped).
#![allow(clippy::result_large_err)]

use crate::arch::x86_64::mem::WindowPage;
use crate::evtchn::{self, HITS};
use crate::roles::{arg, num};
use crate::selftest::{fail, Failure};
use crate::xsd::{self, Server};
use crate::{hv, paging, println, shared};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use xen_abi::event_channel::EVTCHNSTAT_interdomain;
use xen_abi::grant_table::*;
use xenstore_wire::server_ring::Page;
use xenstore_wire::store::Store;

type TestResult = Result<(), Failure>;

/// A mapped store ring as the server end's page.
#[derive(Debug)]
pub struct Ring {
    page: WindowPage,
    handle: u32,
}

impl Page for Ring {
    fn load_u32(&self, off: usize) -> u32 {
        self.page.u32(off).load(Ordering::Acquire)
    }
    fn store_u32(&self, off: usize, v: u32) {
        self.page.u32(off).store(v, Ordering::Release)
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        self.page.read_bytes(off, buf)
    }
    fn write(&self, off: usize, data: &[u8]) {
        self.page.write_bytes(off, data)
    }
}

/// `GNTTAB_RESERVED_XENSTORE`: the client's ring page, granted to us by the builder.
const XENSTORE_GREF: u32 = 1;

fn map_ring(domid: u16) -> Result<Ring, Failure> {
    let va = paging::alloc_window(1).and_then(|va| paging::prepare(va).map(|_| va)).map_err(|e| fail(format_args!("window: {e}")))?;
    let mut m = GnttabMapGrantRef { host_addr: va, flags: GNTMAP_host_map, ref_: XENSTORE_GREF, dom: domid, ..Default::default() };
    let rc = hv::grant(GNTTABOP_map_grant_ref, &mut m);
    if rc != 0 || m.status != GNTST_okay {
        return Err(fail(format_args!("map_grant_ref(d{domid}, ref 1): {rc}, status {}", m.status)));
    }
    Ok(Ring { page: WindowPage::new(va), handle: m.handle })
}

fn unmap_ring(r: &Ring) -> TestResult {
    let mut u = GnttabUnmapGrantRef { host_addr: r.page.va(), handle: r.handle, ..Default::default() };
    let rc = hv::grant(GNTTABOP_unmap_grant_ref, &mut u);
    if rc != 0 || u.status != GNTST_okay {
        return Err(fail(format_args!("unmap_grant_ref: {rc}, status {}", u.status)));
    }
    Ok(())
}

fn alive(port: u32) -> bool {
    matches!(hv::status(port), Ok(s) if s.status == EVTCHNSTAT_interdomain)
}

pub fn run(cmd: &str, test: &mut dyn FnMut(&str, TestResult)) {
    if let Err(e) = crate::heap::ensure(4) {
        return test("xenstored_heap", Err(fail(format_args!("{e}"))));
    }
    let clients = xsd::parse_domids(arg(cmd, "clients").unwrap_or(""));
    let port_base = num(cmd, "port-base", 0) as u32;
    let vbds = xsd::parse_vbds(arg(cmd, "vbd").unwrap_or(""));
    let mut hostile = xsd::parse_domids(arg(cmd, "hostile").unwrap_or(""));
    let names: Vec<&str> = arg(cmd, "names").map(|n| n.split(',').collect()).unwrap_or_default();
    let named: Vec<(u16, String)> = clients
        .iter()
        .enumerate()
        .map(|(i, &d)| (d, names.get(i).map_or_else(|| format!("dom{d}"), |n| String::from(*n))))
        .collect();
    let mut store = Store::new();
    let listed: Vec<(u16, &str)> = named.iter().map(|(d, n)| (*d, n.as_str())).collect();
    let setup = xsd::toolstack_setup(&mut store, &listed, &vbds);
    let ok = setup.is_ok();
    test("xenstored_toolstack_setup", setup.map_err(|e| fail(format_args!("{e:?}"))));
    if !ok {
        return;
    }
    println!("pv-guest: xenstored: {} nodes for {} clients and {} block devices", store.paths().count(), clients.len(), vbds.len());
    let mut srv: Server<Ring> = Server::new(store);
    let mut mapped = Ok(());
    for &d in &clients {
        let port = port_base + u32::from(d);
        match map_ring(d) {
            Ok(ring) => {
                if evtchn::unmask(port) != 0 && mapped.is_ok() {
                    mapped = Err(fail(format_args!("unmask port {port}")));
                }
                srv.add(d, port, ring);
                // Whatever the client sent before we listened.
                hv::send(port);
            }
            Err(f) => {
                if mapped.is_ok() {
                    mapped = Err(f);
                }
            }
        }
    }
    let ok = mapped.is_ok();
    test("xenstored_maps_every_client_ring", mapped);
    if !ok {
        return;
    }
    let mut seen: Vec<u32> = srv.conns.iter().map(|c| HITS.count(c.port)).collect();
    let mut gone = alloc::vec![false; srv.conns.len()];
    let mut bad = Vec::new();
    let mut cleanup = Ok(());
    let t0 = shared::now_ns();
    loop {
        for (i, c) in srv.conns.iter().enumerate() {
            seen[i] = HITS.count(c.port);
        }
        let (ports, dropped) = srv.step();
        for p in &ports {
            hv::send(*p);
        }
        for (d, why) in dropped {
            println!("pv-guest: xenstored: dropping d{d}: {why:?}");
            bad.push(d);
        }
        if !ports.is_empty() {
            continue;
        }
        // Idle: a client whose port is unbound is gone.
        for (i, c) in srv.conns.iter().enumerate() {
            if !gone[i] && !alive(c.port) {
                gone[i] = true;
                let r = unmap_ring(&c.page);
                println!("pv-guest: xenstored: d{} is gone after {} requests; its ring is unmapped", c.domid, c.requests);
                if cleanup.is_ok() {
                    cleanup = r;
                }
            }
        }
        for (i, g) in gone.iter().enumerate() {
            if *g && !srv.conns[i].dead {
                let d = srv.conns[i].domid;
                srv.gone(d);
            }
        }
        if gone.iter().all(|g| *g) {
            break;
        }
        let live: Vec<u32> = srv.conns.iter().enumerate().filter(|(i, _)| !gone[*i]).map(|(_, c)| c.port).collect();
        evtchn::disable();
        let pending = srv.conns.iter().enumerate().any(|(i, c)| !gone[i] && HITS.count(c.port) > seen[i]);
        if !pending {
            hv::poll(&live, shared::now_ns() + 100_000_000);
        }
        evtchn::enable();
    }
    let requests: u64 = srv.conns.iter().map(|c| c.requests).sum();
    let (heap, used) = crate::arch::x86_64::heap::usage();
    println!(
        "pv-guest: xenstored served {requests} requests from {} clients in {} ms ({} nodes; heap {used} of {heap} bytes in use)",
        srv.conns.len(),
        (shared::now_ns() - t0) / 1_000_000,
        srv.store.paths().count()
    );
    test("xenstored_unmaps_gone_clients", cleanup);
    bad.sort_unstable();
    hostile.sort_unstable();
    if !hostile.is_empty() {
        let expected = hostile.iter().all(|d| bad.contains(d));
        test(
            "xenstored_drops_hostile_clients",
            if expected { Ok(()) } else { Err(fail(format_args!("dropped {bad:?}, expected {hostile:?}"))) },
        );
    }
    bad.retain(|d| !hostile.contains(d));
    test(
        "xenstored_served_every_client",
        if bad.is_empty() { Ok(()) } else { Err(fail(format_args!("dropped for protocol errors: {bad:?}"))) },
    );
}
