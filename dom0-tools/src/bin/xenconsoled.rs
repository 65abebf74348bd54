//! `xenconsoled [--log-dir DIR] [--pid-file PATH]`: guest consoles to log files and to a
//! pty per domain (`/local/domain/<id>/console/tty`, what `xl console` attaches to)
//! (`--log` is accepted for Xen's command line and ignored: we always log guests).
#![forbid(unsafe_code)]

use dom0_tools::daemon;
use dom0_tools::xenconsoled::Consoled;
use std::path::PathBuf;

fn main() {
    let args = daemon::args_or_exit("xenconsoled", &["--log-dir", "--pid-file", "--log"], &[]);
    let log_dir = PathBuf::from(args.value("--log-dir").unwrap_or("/var/log/xen/console"));
    daemon::write_pid_file(&args);
    let r = Consoled::new(log_dir).and_then(|mut c| c.run());
    if let Err(e) = r {
        eprintln!("xenconsoled: {e}");
        std::process::exit(1);
    }
}
