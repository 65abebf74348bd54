//! What the dom0 daemons share: their command line (`--opt VALUE`, `--opt=VALUE`,
//! flags; one-line errors), the pid file, and the back-end daemons' error type.

use crate::xs;
use std::collections::{BTreeMap, BTreeSet};

/// A parsed command line. Option names are given as `"--long|-s"` (aliases); values
/// and flags are looked up by the first name.
#[derive(Debug, Default)]
pub struct Args {
    values: BTreeMap<String, String>,
    flags: BTreeSet<String>,
}

impl Args {
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.contains(name)
    }
}

fn canonical<'a>(names: &'a [&'a str], arg: &str) -> Option<&'a str> {
    names.iter().find(|spec| spec.split('|').any(|n| n == arg)).map(|spec| spec.split('|').next().unwrap_or(spec))
}

/// Parses `args` (without the program name): `valued` options take a value, `flags` don't.
pub fn parse(args: impl IntoIterator<Item = String>, valued: &[&str], flags: &[&str]) -> std::result::Result<Args, String> {
    let mut out = Args::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        if let Some(name) = canonical(valued, &key) {
            let v = inline.or_else(|| it.next()).ok_or_else(|| format!("{key} needs a value"))?;
            out.values.insert(name.to_string(), v);
        } else if let Some(name) = canonical(flags, &a) {
            out.flags.insert(name.to_string());
        } else {
            return Err(format!("unknown option `{key}`"));
        }
    }
    Ok(out)
}

/// [`parse`] of the process's arguments; on an error prints `prog: why` and exits 2.
pub fn args_or_exit(prog: &str, valued: &[&str], flags: &[&str]) -> Args {
    parse(std::env::args().skip(1), valued, flags).unwrap_or_else(|e| {
        eprintln!("{prog}: {e}");
        std::process::exit(2)
    })
}

/// Writes our pid to `--pid-file`, if given.
pub fn write_pid_file(args: &Args) {
    if let Some(p) = args.value("--pid-file") {
        let _ = std::fs::write(p, format!("{}\n", std::process::id()));
    }
}

/// A back-end daemon's error.
#[derive(Debug)]
pub enum Error {
    Xs(xs::Error),
    Io(std::io::Error),
    /// A device could not be set up: (back-end path, why).
    Device(String, String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Xs(e) => write!(f, "{e}"),
            Error::Io(e) => write!(f, "{e}"),
            Error::Device(d, w) => write!(f, "{d}: {w}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<xs::Error> for Error {
    fn from(e: xs::Error) -> Self {
        Error::Xs(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> std::result::Result<Args, String> {
        parse(args.iter().map(|s| s.to_string()), &["--pid-file|-F", "--log-dir"], &["--verbose|-V"])
    }

    #[test]
    fn values_flags_and_aliases() {
        let a = p(&["--pid-file", "/run/x.pid", "--log-dir=/l", "-V"]).unwrap();
        assert_eq!(a.value("--pid-file"), Some("/run/x.pid"));
        assert_eq!(a.value("--log-dir"), Some("/l"));
        assert!(a.flag("--verbose"));
        assert_eq!(p(&["-F=/p"]).unwrap().value("--pid-file"), Some("/p"));
        assert!(!p(&[]).unwrap().flag("--verbose"));
    }

    #[test]
    fn errors_name_the_option() {
        assert_eq!(p(&["--pid-file"]).unwrap_err(), "--pid-file needs a value");
        assert_eq!(p(&["--frob"]).unwrap_err(), "unknown option `--frob`");
        assert_eq!(p(&["--verbose=1"]).unwrap_err(), "unknown option `--verbose`");
    }
}
