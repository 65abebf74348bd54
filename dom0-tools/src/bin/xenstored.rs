//! `xenstored [--socket PATH] [--pid-file PATH] [--no-domain-init] [--verbose]`
#![forbid(unsafe_code)]

use dom0_tools::xenstored::server::{Options, Server};
use std::path::PathBuf;

fn main() {
    let mut opts = Options { socket: PathBuf::from("/run/xenstored/socket"), dom0_ring: true, verbose: false };
    let mut pid_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let mut value = |name: &str| {
            inline.clone().or_else(|| args.next()).unwrap_or_else(|| {
                eprintln!("xenstored: {name} needs a value");
                std::process::exit(2)
            })
        };
        match key.as_str() {
            "--socket" => opts.socket = PathBuf::from(value("--socket")),
            "--pid-file" | "-F" => pid_file = Some(value("--pid-file")),
            "--no-domain-init" | "-N" => opts.dom0_ring = false,
            "--verbose" | "-V" => opts.verbose = true,
            other => {
                eprintln!("xenstored: unknown option `{other}`");
                std::process::exit(2);
            }
        }
    }
    let mut server = match Server::new(opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xenstored: {e}");
            std::process::exit(1);
        }
    };
    if let Some(p) = pid_file {
        let _ = std::fs::write(p, format!("{}\n", std::process::id()));
    }
    if let Err(e) = server.run() {
        eprintln!("xenstored: {e}");
        std::process::exit(1);
    }
}
