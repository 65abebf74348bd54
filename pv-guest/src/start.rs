//! From the entry stub to the self-test report and shutdown.

use crate::arch::x86_64::hypercall;
use crate::mm::pte;
use crate::{cmdline, console, roles, evtchn, paging, println, selftest, shared, trap};
use xen_abi::sched::{SHUTDOWN_crash, SHUTDOWN_poweroff};
use xen_abi::xen::{StartInfo, SIF_INITDOMAIN};

fn fatal(what: &str, r: i64) -> ! {
    println!("pv-guest: {what} failed: {r}");
    hypercall::shutdown(SHUTDOWN_crash);
    loop {
        core::hint::spin_loop();
    }
}

pub fn main(si: &'static StartInfo) -> ! {
    let layout = match paging::init(si) {
        Ok(l) => l,
        Err(why) => {
            println!("pv-guest: bad start-of-day layout: {why}");
            fatal("paging::init", -22);
        }
    };
    if let Err((what, r)) = trap::init() {
        fatal(what, r);
    }
    // A guard page below the stack: an overflow becomes a fault, not corrupted statics.
    match hypercall::unmap_stack_guard() {
        0 => {}
        r => fatal("unmapping the stack guard page", r),
    }
    // start_info.shared_info is a machine address.
    match paging::map_frame(si.shared_info >> 12, pte::KERNEL_RW) {
        Ok(page) => shared::set_page(page),
        Err(r) => fatal("mapping shared_info", r),
    }
    // A domU built without a console ring (e.g. from xen-core's boot manifest, which has
    // no console daemon) keeps console_io, as the hardware domain does.
    if si.flags & SIF_INITDOMAIN == 0 && si.console_mfn != 0 {
        match paging::map_frame(si.console_mfn, pte::KERNEL_RW) {
            Ok(page) => console::use_ring(page, si.console_evtchn),
            Err(r) => fatal("mapping the console ring", r),
        }
    }
    evtchn::init();
    let cmd = cmdline::from_bytes(&si.cmd_line);
    println!("pv-guest: start (cmdline \"{cmd}\")");
    println!(
        "pv-guest: {} pages, initial mapping up to pfn {:#x}, first free pfn {:#x}, console {}",
        layout.nr_pages,
        layout.mapped_end_pfn,
        layout.first_free_pfn,
        if console::is_ring() { "ring" } else { "console_io" }
    );
    let (passed, failed) = match roles::run(cmd, si) {
        Some(r) => r,
        None => selftest::run(&selftest::Env { start_info: si, layout }, cmdline::tests(cmd)),
    };
    println!("{passed} passed, {failed} failed");
    let reason = if failed == 0 { SHUTDOWN_poweroff } else { SHUTDOWN_crash };
    let r = hypercall::shutdown(reason);
    fatal("SCHEDOP_shutdown", r);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("pv-guest: panic: {info}");
    hypercall::shutdown(SHUTDOWN_crash);
    loop {
        core::hint::spin_loop();
    }
}
