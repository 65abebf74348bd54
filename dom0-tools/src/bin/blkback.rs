//! `blkback [--pid-file PATH] [--exit-when-idle] [--timing]`: serves `disk=` image files
//! to front-ends (see `dom0_tools::blkback`); `--timing` logs the time spent serving each
//! ring at disconnect.
#![forbid(unsafe_code)]

use dom0_tools::blkback::Blkback;

fn main() {
    let mut pid_file = None;
    let mut exit_when_idle = false;
    let mut timing = false;
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
                    eprintln!("blkback: --pid-file needs a value");
                    std::process::exit(2);
                }
            },
            "--exit-when-idle" => exit_when_idle = true,
            "--timing" => timing = true,
            other => {
                eprintln!("blkback: unknown option `{other}`");
                std::process::exit(2);
            }
        }
    }
    if let Some(p) = pid_file {
        let _ = std::fs::write(p, format!("{}\n", std::process::id()));
    }
    let r = Blkback::new().and_then(|mut b| {
        b.exit_when_idle = exit_when_idle;
        b.timing = timing;
        b.run()
    });
    if let Err(e) = r {
        eprintln!("blkback: {e}");
        std::process::exit(1);
    }
}
