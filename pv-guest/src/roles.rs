//! Roles for multi-domain runs on xen-core's boot manifest (`role=` on the command
//! line): an event-channel ping/pong pair and a grant server/client pair. Each prints
//! `TEST` lines and `BENCH <name> <value> <unit>` figures (the block roles and the
//! xenstore service domain are in `blk`, `xenbus` and `xenstored`); ports come from the
//! manifest's static event channels (`port=`), the peer's id from `peer=`.

// A failure carries its message inline (these roles run without a heap), as in selftest.
#![allow(clippy::result_large_err)]

use crate::arch::x86_64::mem::{scratch_addr, scratch_fill, scratch_get, WindowPage};
use crate::evtchn::{self, Sleep};
use crate::mm::pte;
use crate::paging;
use crate::selftest::{fail, Failure};
use crate::{hv, println, shared};
use core::sync::atomic::{fence, Ordering};
use xen_abi::grant_table::*;
use xen_abi::xen::{StartInfo, DOMID_SELF};

/// The grant reference the server offers (the first one not reserved).
const GREF: u32 = GNTTAB_NR_RESERVED_ENTRIES;
/// How long any one wait may take before the role gives up.
const WAIT_NS: u64 = 5_000_000_000;

pub fn arg<'a>(cmd: &'a str, key: &str) -> Option<&'a str> {
    cmd.split_ascii_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

pub fn num(cmd: &str, key: &str, default: u64) -> u64 {
    arg(cmd, key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

type TestResult = Result<(), Failure>;

struct Report {
    passed: u32,
    failed: u32,
}

impl Report {
    fn test(&mut self, name: &str, r: TestResult) {
        match r {
            Ok(()) => {
                self.passed += 1;
                println!("TEST {name} PASS");
            }
            Err(f) => {
                self.failed += 1;
                println!("TEST {name} FAIL {}", f.as_str());
            }
        }
    }
}

/// Waits for event number `n` (1-based) on `port`.
fn wait_nth(port: u32, n: u32) -> TestResult {
    if evtchn::wait_for(port, n - 1, shared::now_ns() + WAIT_NS, Sleep::Poll) {
        Ok(())
    } else {
        let (w, bit) = crate::events::port_position(port);
        Err(fail(format_args!(
            "no event {n} on port {port} within 5 s (dispatched {}, pending {}, masked {}, upcall pending {})",
            evtchn::HITS.count(port),
            shared::pending_word(w).load(Ordering::SeqCst) & bit != 0,
            shared::mask_word(w).load(Ordering::SeqCst) & bit != 0,
            shared::upcall_pending().load(Ordering::SeqCst)
        )))
    }
}

fn send(port: u32) -> TestResult {
    match hv::send(port) {
        0 => Ok(()),
        r => Err(fail(format_args!("EVTCHNOP_send({port}): {r}"))),
    }
}

/// Runs the role `cmd` names; returns (passed, failed), or None without `role=`.
pub fn run(cmd: &str, si: &StartInfo) -> Option<(u32, u32)> {
    let role = arg(cmd, "role")?;
    if let Some(block) = block_role(role, cmd, si) {
        return Some(block);
    }
    let mut r = Report { passed: 0, failed: 0 };
    // Static ports from the boot manifest, or (rendezvous=xs, for a pair `xl` creates)
    // a channel set up over xenstore, with events to skip (the hello, or binding's one).
    let (port, peer, skip) = if arg(cmd, "rendezvous") == Some("xs") {
        match rendezvous(role, cmd, si) {
            Ok((port, peer, skip)) => (port, peer, skip),
            Err(f) => {
                r.test("rendezvous", Err(f));
                return Some((r.passed, r.failed));
            }
        }
    } else {
        (num(cmd, "port", 0) as u32, num(cmd, "peer", 0) as u16, 0)
    };
    let unmasked = evtchn::unmask(port);
    if unmasked != 0 {
        r.test("static_port", Err(fail(format_args!("unmask({port}): {unmasked}"))));
        return Some((r.passed, r.failed));
    }
    match role {
        "pong" => {
            let rounds = num(cmd, "rounds", 1000) as u32;
            if skip > 0 {
                // Acknowledged before the first ping: two sends before the receiver
                // takes the first one are one event, so hello and ping must not overlap.
                r.test("rendezvous_hello", wait_hello(port).and_then(|_| send(port)));
            }
            r.test("evtchn_pong", (1..=rounds).try_for_each(|i| wait_nth(port, i + skip).and_then(|_| send(port))));
        }
        "ping" => {
            let rounds = num(cmd, "rounds", 1000) as u32;
            let mut skip = skip;
            if arg(cmd, "rendezvous") == Some("xs") {
                r.test("rendezvous_ack", wait_nth(port, skip + 1));
                skip += 1;
            }
            let t0 = shared::now_ns();
            let res = (1..=rounds).try_for_each(|i| send(port).and_then(|_| wait_nth(port, i + skip)));
            let dt = shared::now_ns() - t0;
            if res.is_ok() {
                println!("BENCH evtchn_pingpong_rtt {} ns", dt / u64::from(rounds.max(1)));
            }
            r.test("evtchn_pingpong", res);
        }
        "grant-server" => {
            if skip > 0 {
                r.test("rendezvous_hello", wait_hello(port));
            }
            grant_server(&mut r, port, peer, skip)
        }
        // A guest bug the hypervisor must contain: a page fault with no handler for it.
        "crash" => {
            // set_trap_table(NULL) clears the table: the fault below has nowhere to go.
            crate::arch::x86_64::hypercall::raw_no_args(xen_abi::hypercall::HYPERVISOR_set_trap_table);
            println!("pv-guest: touching an unmapped page with no trap table");
            let v = crate::arch::x86_64::traps::read_u64(crate::mm::VMAP_END - 8);
            r.test("crash", Err(fail(format_args!("read of an unmapped page returned {v:?}"))));
        }
        "grant-client" => grant_client(&mut r, port, peer, num(cmd, "iters", 1000), skip),
        "reaper" => reaper(&mut r, port, peer),
        "victim" => victim(&mut r, port, peer, num(cmd, "self", 0) as u16),
        other => r.test("role", Err(fail(format_args!("unknown role {other}")))),
    }
    Some((r.passed, r.failed))
}

/// The block roles (in `blk` and, over xenstore, `xenbus`) and the xenstore service
/// domain (`xenstored`), which set up their own ports.
fn block_role(role: &str, cmd: &str, si: &StartInfo) -> Option<(u32, u32)> {
    let mut r = Report { passed: 0, failed: 0 };
    let mut test = |name: &str, res: TestResult| r.test(name, res);
    match role {
        "blkback" => crate::blk::backend(cmd, &mut test),
        "blkfront" => crate::blk::frontend(cmd, &mut test),
        "blkfront-hostile" => crate::blk::hostile(cmd, &mut test),
        "blkfront-bench" => crate::blk::bench(cmd, &mut test),
        "xenstored" => crate::xenstored::run(cmd, &mut test),
        "blkback-xenbus" => crate::xenbus::backend(si, cmd, &mut test),
        "blkfront-xenbus" => crate::xenbus::frontend(si, cmd, &mut test),
        "blkfront-hostile-xenbus" => crate::blk_hostile::frontend(si, &mut test),
        "netfront-xenbus" => crate::net::frontend(si, cmd, &mut test),
        "netfront-hostile-xenbus" => crate::net_hostile::frontend(si, &mut test),
        "xenstore-hostile" => crate::store::hostile(si, &mut test),
        "null-hypercall" => null_hypercall(cmd, &mut test),
        "spin" => spin(),
        "fuzz" => crate::fuzz::run(si, cmd, &mut test),
        "maptrack-fill" => crate::hostile::fill_role(cmd, &mut test),
        _ => return None,
    }
    Some((r.passed, r.failed))
}

/// A pair `xl` created (no static channels): the offering side (`pong`, `grant-server`)
/// allocates an unbound port for `peer=` and publishes it as `data/bench-port`; dom0
/// copies it and the offerer's id into the joining side's `data/peer-port` and
/// `data/peer-dom` before unpausing it; the joiner binds and sends a hello. Returns
/// (port, peer, events the role has to skip: the hello on the offering side, the one
/// binding raised on the joining side).
fn rendezvous(role: &str, cmd: &str, si: &StartInfo) -> Result<(u32, u16, u32), Failure> {
    use crate::xenbus as xb;
    crate::heap::ensure(1).map_err(|e| fail(format_args!("{e}")))?;
    let mut xs = xb::open(si)?;
    match role {
        "pong" | "grant-server" => {
            let peer = num(cmd, "peer", 0) as u16;
            let port = hv::alloc_unbound(DOMID_SELF.0, peer).map_err(|e| fail(format_args!("alloc_unbound for {peer}: {e}")))?;
            xb::write(&mut xs, "data/bench-port", &alloc::format!("{port}"))?;
            Ok((port, peer, 1))
        }
        _ => {
            let peer = xb::read_num(&mut xs, "data/peer-dom")? as u16;
            let remote = xb::read_num(&mut xs, "data/peer-port")? as u32;
            let port = hv::bind_interdomain(peer, remote).map_err(|e| fail(format_args!("bind_interdomain({peer}, {remote}): {e}")))?;
            // Binding marks the new port pending (Xen does, so no notification is lost):
            // unmasking delivers that one, which the role's counting skips.
            evtchn::unmask(port);
            let spurious = evtchn::HITS.count(port);
            send(port)?;
            Ok((port, peer, spurious))
        }
    }
}

/// The joiner's hello: dom0 starts it only after it read our port, so allow for that.
fn wait_hello(port: u32) -> TestResult {
    if evtchn::wait_for(port, 0, shared::now_ns() + 120_000_000_000, Sleep::Poll) {
        Ok(())
    } else {
        Err(fail(format_args!("no hello on port {port} within 120 s")))
    }
}

/// Times the cheapest hypercall, `xen_version(XENVER_version)`, `count=` times: the cost
/// of entering and leaving the hypervisor. Every answer must be the first one.
fn null_hypercall(cmd: &str, test: &mut dyn FnMut(&str, TestResult)) {
    use crate::arch::x86_64::hypercall::xen_version_no_arg;
    let count = num(cmd, "count", 100_000).max(1);
    let first = xen_version_no_arg(0);
    let t0 = shared::now_ns();
    let mut odd = 0u64;
    for _ in 0..count {
        if xen_version_no_arg(0) != first {
            odd += 1;
        }
    }
    let dt = shared::now_ns() - t0;
    println!("BENCH null_hypercall {} ns", dt / count);
    test(
        "null_hypercall_answers",
        if first > 0 && odd == 0 { Ok(()) } else { Err(fail(format_args!("version {first:#x}, {odd} different answers"))) },
    );
}

/// CPU-bound for ever (the scheduler tests measure how CPU time is shared): no
/// hypercall, no blocking; the toolstack destroys it.
fn spin() -> ! {
    println!("SPIN started");
    let mut x = 0u64;
    loop {
        x = core::hint::black_box(x.wrapping_add(1));
        core::hint::spin_loop();
    }
}

fn pattern(i: usize) -> u64 {
    0x5eed_0000_0000_0000 | i as u64
}

/// Offers a page to `peer` (grant ref GREF), checks it can't be taken back while the
/// peer maps it, sees the peer's write, and takes it back after the unmap.
fn grant_server(r: &mut Report, port: u32, peer: u16, seen: u32) {
    let setup = || -> Result<(WindowPage, WindowPage), Failure> {
        scratch_fill(hv::AUX, 8, 0);
        let mut s = GnttabSetupTable { dom: DOMID_SELF.0, nr_frames: 1, frame_list: scratch_addr(hv::AUX), ..Default::default() };
        let rc = hv::grant(GNTTABOP_setup_table, &mut s);
        if rc != 0 || s.status != GNTST_okay {
            return Err(fail(format_args!("setup_table: {rc}, status {}", s.status)));
        }
        let frame: u64 = scratch_get(hv::AUX);
        let table = paging::map_frame(frame, pte::KERNEL_RW).map_err(|e| fail(format_args!("map grant frame: {e}")))?;
        let (page, _, mfn) = paging::new_page().map_err(|e| fail(format_args!("new page: {e}")))?;
        for i in 0..256 {
            page.u64(i * 8).store(pattern(i), Ordering::Relaxed);
        }
        let off = GREF as usize * 8;
        table.u32(off + 4).store(mfn as u32, Ordering::Relaxed);
        table.u16(off + 2).store(peer, Ordering::Relaxed);
        fence(Ordering::Release);
        table.u16(off).store(GTF_permit_access, Ordering::Release);
        Ok((table, page))
    };
    let (table, page) = match setup() {
        Ok(t) => t,
        Err(f) => return r.test("grant_offer", Err(f)),
    };
    r.test("grant_offer", send(port));
    let off = GREF as usize * 8;
    // Event 1 from the client: it has the page mapped writable.
    r.test(
        "grant_revoke_refused_while_mapped",
        wait_nth(port, 1 + seen).and_then(|_| {
            let flags = table.u16(off).load(Ordering::Acquire);
            let busy = flags & (GTF_reading | GTF_writing) == GTF_reading | GTF_writing;
            let taken = table.u16(off).compare_exchange(GTF_permit_access, 0, Ordering::AcqRel, Ordering::Acquire);
            if busy && taken.is_err() {
                Ok(())
            } else {
                Err(fail(format_args!("flags {flags:#x} while mapped, revoke {taken:?}")))
            }
        }),
    );
    r.test(
        "grant_peer_write_visible",
        match page.u64(2048).load(Ordering::Acquire) {
            0xc11e_0000_0000_0001 => Ok(()),
            v => Err(fail(format_args!("word at 2048 is {v:#x}"))),
        },
    );
    // Event 2 to the client: go on; event 2 from it: unmapped.
    r.test(
        "grant_revoke_after_unmap",
        send(port).and_then(|_| wait_nth(port, 2 + seen)).and_then(|_| {
            let taken = table.u16(off).compare_exchange(GTF_permit_access, 0, Ordering::AcqRel, Ordering::Acquire);
            taken.map(|_| ()).map_err(|f| fail(format_args!("flags {f:#x} after the peer unmapped")))
        }),
    );
}

fn map(peer: u16, va: u64, readonly: bool) -> Result<u32, Failure> {
    let flags = GNTMAP_host_map | if readonly { GNTMAP_readonly } else { 0 };
    let mut m = GnttabMapGrantRef { host_addr: va, flags, ref_: GREF, dom: peer, ..Default::default() };
    let rc = hv::grant(GNTTABOP_map_grant_ref, &mut m);
    if rc != 0 || m.status != GNTST_okay {
        return Err(fail(format_args!("map_grant_ref: {rc}, status {}", m.status)));
    }
    Ok(m.handle)
}

fn unmap(va: u64, handle: u32) -> TestResult {
    let mut u = GnttabUnmapGrantRef { host_addr: va, handle, ..Default::default() };
    let rc = hv::grant(GNTTABOP_unmap_grant_ref, &mut u);
    if rc != 0 || u.status != GNTST_okay {
        return Err(fail(format_args!("unmap_grant_ref: {rc}, status {}", u.status)));
    }
    Ok(())
}

/// Maps the server's page read-only and writable, copies it, and times map+unmap
/// against copy per 4 KiB page.
fn grant_client(r: &mut Report, port: u32, peer: u16, iters: u64, seen: u32) {
    r.test("grant_offer_seen", wait_nth(port, 1 + seen));
    let va = match paging::alloc_window(1).and_then(|va| paging::prepare(va).map(|_| va)) {
        Ok(v) => v,
        Err(e) => return r.test("grant_window", Err(fail(format_args!("{e}")))),
    };
    let t0 = shared::now_ns();
    let maps = (0..iters).try_for_each(|_| map(peer, va, true).and_then(|h| unmap(va, h)));
    let t1 = shared::now_ns();
    if maps.is_ok() {
        println!("BENCH grant_map_unmap {} ns/page", (t1 - t0) / iters.max(1));
    }
    r.test("grant_map_unmap_readonly", maps);

    let copy = || -> TestResult {
        let (dst, _, dst_mfn) = paging::new_page().map_err(|e| fail(format_args!("new page: {e}")))?;
        let t0 = shared::now_ns();
        for _ in 0..iters {
            let mut c = GnttabCopy {
                source: GnttabCopyPtr { u: GREF.into(), domid: peer, offset: 0, ..Default::default() },
                dest: GnttabCopyPtr { u: dst_mfn, domid: DOMID_SELF.0, offset: 0, ..Default::default() },
                len: 4096,
                flags: GNTCOPY_source_gref,
                ..Default::default()
            };
            let rc = hv::grant(GNTTABOP_copy, &mut c);
            if rc != 0 || c.status != GNTST_okay {
                return Err(fail(format_args!("copy: {rc}, status {}", c.status)));
            }
        }
        let t1 = shared::now_ns();
        println!("BENCH grant_copy {} ns/page", (t1 - t0) / iters.max(1));
        (0..256).try_for_each(|i| match dst.u64(i * 8).load(Ordering::Relaxed) {
            v if v == pattern(i) => Ok(()),
            v => Err(fail(format_args!("copied word {i} is {v:#x}"))),
        })
    };
    r.test("grant_copy_data", copy());

    let rw = || -> TestResult {
        let h = map(peer, va, false)?;
        let page = WindowPage::new(va);
        (0..256).try_for_each(|i| match page.u64(i * 8).load(Ordering::Relaxed) {
            v if v == pattern(i) => Ok(()),
            v => Err(fail(format_args!("mapped word {i} is {v:#x}"))),
        })?;
        page.u64(2048).store(0xc11e_0000_0000_0001, Ordering::Release);
        send(port)?; // event 1: mapped and written
        wait_nth(port, 2 + seen)?; // the server checked the grant can't be revoked
        unmap(va, h)?;
        send(port) // event 2: unmapped
    };
    r.test("grant_map_writable", rw());
}

/// A privileged domain ending another one with `SCHEDOP_remote_shutdown` (xen-core
/// destroys it at once, as a domain's own shutdown): it offers the victim a page, waits
/// until the victim maps it, shuts the victim down, and then sees the mapping gone (its
/// grant can be revoked) and the channel unbound.
fn reaper(r: &mut Report, port: u32, peer: u16) {
    let setup = || -> Result<WindowPage, Failure> {
        let table = crate::net::grant_table()?;
        let (_, _, mfn) = paging::new_page().map_err(|e| fail(format_args!("new page: {e}")))?;
        crate::net::grant_entry(&table, GREF, mfn, peer, false);
        Ok(table)
    };
    let table = match setup() {
        Ok(t) => t,
        Err(f) => return r.test("reaper_offer", Err(f)),
    };
    r.test("reaper_offer", send(port));
    let off = GREF as usize * 8;
    r.test(
        "reaper_victim_maps_grant",
        wait_nth(port, 1).and_then(|_| match table.u16(off).load(Ordering::Acquire) {
            f if f & (GTF_reading | GTF_writing) == GTF_reading | GTF_writing => Ok(()),
            f => Err(fail(format_args!("flags {f:#x} after the victim mapped"))),
        }),
    );
    let mut a = xen_abi::sched::SchedRemoteShutdown { domain_id: peer, reason: xen_abi::sched::SHUTDOWN_poweroff, ..Default::default() };
    let rc = hv::sched(xen_abi::sched::SCHEDOP_remote_shutdown, &mut a);
    r.test("reaper_remote_shutdown", if rc == 0 { Ok(()) } else { Err(fail(format_args!("remote_shutdown(d{peer}): {rc}"))) });
    // The victim is destroyed before we run again: its mapping and its end of the
    // channel are gone.
    let _ = hv::sched_yield();
    r.test(
        "reaper_victim_mapping_gone",
        table
            .u16(off)
            .compare_exchange(GTF_permit_access, 0, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|f| fail(format_args!("grant flags {f:#x} after the victim's shutdown"))),
    );
    r.test(
        "reaper_victim_port_unbound",
        match hv::status(port) {
            Ok(st) if st.status == xen_abi::event_channel::EVTCHNSTAT_unbound => Ok(()),
            other => Err(fail(format_args!("port {port}: {other:?}"))),
        },
    );
    r.test(
        "reaper_victim_gone",
        {
            // A privileged caller may ask about any domain: not this one any more.
            let mut q = GnttabQuerySize { dom: peer, ..Default::default() };
            match hv::grant(GNTTABOP_query_size, &mut q) {
                0 if q.status == GNTST_bad_domain => Ok(()),
                rc => Err(fail(format_args!("query_size(d{peer}): {rc}, status {}", q.status))),
            }
        },
    );
}

/// The reaper's victim: an unprivileged domain, so `console_io` is refused it (Xen's
/// dummy XSM, release build); it maps the reaper's page, holds ports, reports, and
/// then sleeps until it is shut down from outside.
fn victim(r: &mut Report, port: u32, peer: u16, self_id: u16) {
    use xen_abi::hypercall::HYPERVISOR_console_io;
    use xen_abi::xen::{CONSOLEIO_read, CONSOLEIO_write};
    let console = |cmd: u32| {
        scratch_fill(hv::AUX, 16, b'x');
        crate::arch::x86_64::hypercall::call(HYPERVISOR_console_io, [cmd.into(), 16, scratch_addr(hv::AUX), 0, 0])
    };
    for (name, cmd) in [("domu_console_io_write_refused", CONSOLEIO_write), ("domu_console_io_read_refused", CONSOLEIO_read), ("domu_console_io_unknown_refused", 99)] {
        let rc = console(cmd);
        r.test(name, if rc == -1 { Ok(()) } else { Err(fail(format_args!("console_io({cmd}): {rc}, wanted -EPERM"))) });
    }
    // SCHEDOP_remote_shutdown is the control domain's (Xen's XSM_DM_PRIV): an
    // unprivileged domain may not end another one, nor itself this way.
    for (name, dom) in [("domu_remote_shutdown_of_peer_refused", peer), ("domu_remote_shutdown_of_itself_refused", self_id)] {
        let mut a = xen_abi::sched::SchedRemoteShutdown { domain_id: dom, reason: xen_abi::sched::SHUTDOWN_poweroff, ..Default::default() };
        let rc = hv::sched(xen_abi::sched::SCHEDOP_remote_shutdown, &mut a);
        r.test(name, if rc == -1 { Ok(()) } else { Err(fail(format_args!("remote_shutdown(d{dom}): {rc}, wanted -EPERM"))) });
    }
    r.test("victim_offer_seen", wait_nth(port, 1));
    let mapped = paging::alloc_window(1)
        .and_then(|va| paging::prepare(va).map(|_| va))
        .map_err(|e| fail(format_args!("window: {e}")))
        .and_then(|va| map(peer, va, false));
    let extra = (0..4).map(|_| hv::alloc_unbound(DOMID_SELF.0, peer)).filter(Result::is_ok).count();
    r.test("victim_holds_mapping_and_ports", mapped.map(|_| ()).and_then(|_| if extra == 4 { Ok(()) } else { Err(fail(format_args!("{extra} of 4 ports"))) }));
    // Its vcpu_info moved to a page it then gives back: the hypervisor's reference keeps
    // the page until the domain is destroyed, which must free it (the harness counts).
    let moved = || -> TestResult {
        let (page, _, mfn) = paging::new_page().map_err(|e| fail(format_args!("new page: {e}")))?;
        evtchn::disable();
        let mut a = xen_abi::vcpu::VcpuRegisterVcpuInfo { mfn, offset: 64, rsvd: 0 };
        let rc = hv::vcpu(xen_abi::vcpu::VCPUOP_register_vcpu_info, 0, &mut a);
        if rc == 0 {
            shared::set_vcpu_info(page, 64);
        }
        evtchn::enable();
        if rc != 0 {
            return Err(fail(format_args!("register_vcpu_info: {rc}")));
        }
        crate::arch::x86_64::mem::scratch_put(hv::AUX, &mfn);
        let mut m = xen_abi::memory::XenMemoryReservation { extent_start: scratch_addr(hv::AUX), nr_extents: 1, domid: DOMID_SELF.0, ..Default::default() };
        match hv::op(xen_abi::hypercall::HYPERVISOR_memory_op, xen_abi::memory::XENMEM_decrease_reservation.into(), &mut m) {
            1 => Ok(()),
            rc => Err(fail(format_args!("decrease_reservation of the vcpu_info page: {rc}"))),
        }
    };
    r.test("victim_vcpu_info_page_given_back", moved());
    // And a page it keeps mapped: freed when its last mapping goes (with the domain).
    let mapped_page = || -> TestResult {
        let (page, _, mfn) = paging::new_page().map_err(|e| fail(format_args!("new page: {e}")))?;
        page.u64(0).store(0x7e57, Ordering::Relaxed);
        crate::arch::x86_64::mem::scratch_put(hv::AUX, &mfn);
        let mut m = xen_abi::memory::XenMemoryReservation { extent_start: scratch_addr(hv::AUX), nr_extents: 1, domid: DOMID_SELF.0, ..Default::default() };
        match hv::op(xen_abi::hypercall::HYPERVISOR_memory_op, xen_abi::memory::XENMEM_decrease_reservation.into(), &mut m) {
            1 if page.u64(0).load(Ordering::Relaxed) == 0x7e57 => Ok(()),
            rc => Err(fail(format_args!("decrease_reservation of a mapped page: {rc}"))),
        }
    };
    r.test("victim_mapped_page_given_back", mapped_page());
    println!("{} passed, {} failed", r.passed, r.failed);
    let _ = send(port);
    loop {
        let _ = hv::sched_block();
    }
}
