//! `blkback [--pid-file PATH] [--exit-when-idle] [--timing]`: serves `disk=` image files
//! to front-ends (see `dom0_tools::blkback`); `--timing` logs the time spent serving each
//! ring at disconnect.
#![forbid(unsafe_code)]

use dom0_tools::blkback::Blkback;
use dom0_tools::daemon;

fn main() {
    let args = daemon::args_or_exit("blkback", &["--pid-file"], &["--exit-when-idle", "--timing"]);
    daemon::write_pid_file(&args);
    let r = Blkback::new().and_then(|mut b| {
        b.exit_when_idle = args.flag("--exit-when-idle");
        b.timing = args.flag("--timing");
        b.run()
    });
    if let Err(e) = r {
        eprintln!("blkback: {e}");
        std::process::exit(1);
    }
}
