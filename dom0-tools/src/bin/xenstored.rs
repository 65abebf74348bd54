//! `xenstored [--socket PATH] [--pid-file PATH] [--no-domain-init] [--verbose]`
#![forbid(unsafe_code)]

use dom0_tools::daemon;
use dom0_tools::xenstored::server::{Options, Server};
use std::path::PathBuf;

fn main() {
    let args = daemon::args_or_exit("xenstored", &["--socket", "--pid-file|-F"], &["--no-domain-init|-N", "--verbose|-V"]);
    let opts = Options {
        socket: PathBuf::from(args.value("--socket").unwrap_or("/run/xenstored/socket")),
        dom0_ring: !args.flag("--no-domain-init"),
        verbose: args.flag("--verbose"),
    };
    let mut server = match Server::new(opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xenstored: {e}");
            std::process::exit(1);
        }
    };
    daemon::write_pid_file(&args);
    if let Err(e) = server.run() {
        eprintln!("xenstored: {e}");
        std::process::exit(1);
    }
}
