//! `xenconsoled [--log-dir DIR] [--pid-file PATH]`: guest consoles to log files.
#![forbid(unsafe_code)]

use dom0_tools::xenconsoled::Consoled;
use std::path::PathBuf;

fn main() {
    let mut log_dir = PathBuf::from("/var/log/xen/console");
    let mut pid_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (k, v) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let mut val = || v.clone().or_else(|| args.next()).unwrap_or_else(|| {
            eprintln!("xenconsoled: {k} needs a value");
            std::process::exit(2)
        });
        match k.as_str() {
            "--log-dir" => log_dir = PathBuf::from(val()),
            "--pid-file" => pid_file = Some(val()),
            "--log" => {
                let _ = val();
            }
            other => {
                eprintln!("xenconsoled: unknown option `{other}`");
                std::process::exit(2);
            }
        }
    }
    if let Some(p) = pid_file {
        let _ = std::fs::write(p, format!("{}\n", std::process::id()));
    }
    let r = Consoled::new(log_dir).and_then(|mut c| c.run());
    if let Err(e) = r {
        eprintln!("xenconsoled: {e}");
        std::process::exit(1);
    }
}
