//! `netback [--pid-file PATH]`: serves `vif=` interfaces to front-ends as TAP devices
//! (see `dom0_tools::netback`).
#![forbid(unsafe_code)]

use dom0_tools::netback::Netback;

fn main() {
    let mut pid_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (k, v) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        match k.as_str() {
            "--pid-file" => match v.or_else(|| args.next()) {
                Some(p) => pid_file = Some(p),
                None => {
                    eprintln!("netback: --pid-file needs a value");
                    std::process::exit(2);
                }
            },
            other => {
                eprintln!("netback: unknown option `{other}`");
                std::process::exit(2);
            }
        }
    }
    if let Some(p) = pid_file {
        let _ = std::fs::write(p, format!("{}\n", std::process::id()));
    }
    if let Err(e) = Netback::new().and_then(|mut n| n.run()) {
        eprintln!("netback: {e}");
        std::process::exit(1);
    }
}
