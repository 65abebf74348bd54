//! `pv_main`: from the entry stub to the self-test report and shutdown.

use crate::arch::x86_64::hypercall;
use crate::{cmdline, println, selftest};
use xen_abi::sched::{SHUTDOWN_crash, SHUTDOWN_poweroff};
use xen_abi::xen::StartInfo;

#[no_mangle]
extern "C" fn pv_main(start_info: *const StartInfo) -> ! {
    // SAFETY: the domain builder passes the virtual address of start_info in rsi; it is
    // mapped, page-aligned and stays valid for the life of the domain.
    let si = unsafe { &*start_info };
    let cmd = cmdline::from_bytes(&si.cmd_line);
    println!("pv-guest: start (cmdline \"{cmd}\")");
    let (passed, failed) = selftest::run(&selftest::Env { start_info: si }, cmdline::tests(cmd));
    println!("{passed} passed, {failed} failed");
    let reason = if failed == 0 { SHUTDOWN_poweroff } else { SHUTDOWN_crash };
    let r = hypercall::shutdown(reason);
    println!("pv-guest: SCHEDOP_shutdown returned {r}");
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("pv-guest: panic: {info}");
    hypercall::shutdown(SHUTDOWN_crash);
    loop {
        core::hint::spin_loop();
    }
}
