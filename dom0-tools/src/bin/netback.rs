//! `netback [--pid-file PATH]`: serves `vif=` interfaces to front-ends as TAP devices
//! (see `dom0_tools::netback`).
#![forbid(unsafe_code)]

use dom0_tools::daemon;
use dom0_tools::netback::Netback;

fn main() {
    let args = daemon::args_or_exit("netback", &["--pid-file"], &[]);
    daemon::write_pid_file(&args);
    if let Err(e) = Netback::new().and_then(|mut n| n.run()) {
        eprintln!("netback: {e}");
        std::process::exit(1);
    }
}
