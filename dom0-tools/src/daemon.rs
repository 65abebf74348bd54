//! What the dom0 daemons share: their command line (`--opt VALUE`, `--opt=VALUE`,
//! flags; one-line errors), the pid file, and the back-end daemons' error type.

use crate::xs::{self, Xs};
use xen_abi::xenbus::XenbusState;
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

/// `XenbusState*` as the numbers in `state` nodes.
pub const INIT_WAIT: u32 = XenbusState::InitWait as u32;
pub const INITIALISED: u32 = XenbusState::Initialised as u32;
pub const CONNECTED: u32 = XenbusState::Connected as u32;
pub const CLOSING: u32 = XenbusState::Closing as u32;
pub const CLOSED: u32 = XenbusState::Closed as u32;

/// Where a back-end daemon's device is in the xenbus handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    New,
    InitWait,
    Connected,
    Closing,
    Closed,
    /// Set-up failed; left alone until the toolstack removes it.
    Failed,
}

/// What a back-end does next, given its phase and the front-end's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The front-end published its rings: map them, bind, go `Connected`.
    Connect,
    /// Go `Closing` (after disconnecting, when connected).
    Close { disconnect: bool },
    Stay,
}

/// The handshake rule both back-end daemons follow (as Linux's back-ends do): connect
/// once the front-end is `Initialised`/`Connected`; close when it goes away or closes
/// before that, or leaves those states once connected.
pub fn next_step(phase: Phase, front_end: Option<u32>) -> Step {
    let ready = matches!(front_end, Some(INITIALISED | CONNECTED));
    match phase {
        Phase::InitWait if ready => Step::Connect,
        Phase::InitWait if matches!(front_end, Some(CLOSING | CLOSED) | None) => Step::Close { disconnect: false },
        Phase::Connected if !ready => Step::Close { disconnect: true },
        _ => Step::Stay,
    }
}

/// A closing back-end goes `Closed` once the front-end is `Closed` or gone.
pub fn may_close(phase: Phase, front_end: Option<u32>) -> bool {
    phase == Phase::Closing && matches!(front_end, Some(CLOSED) | None)
}

/// The number in `<dir>/state`, if there is one.
pub fn state_of(xs: &mut Xs, dir: &str) -> Option<u32> {
    xs.read_string(0, &format!("{dir}/state")).ok()?.trim().parse().ok()
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

/// The devices the toolstack created under a back-end root (`<root>/<domid>/<devid>`),
/// as (front-end domid, device id); entries that are not numbers are skipped.
pub fn list_devices(xs: &mut Xs, root: &str) -> Vec<(u16, u32)> {
    let mut present = Vec::new();
    for dom in xs.directory(0, root).unwrap_or_default() {
        let Ok(domid) = dom.parse::<u16>() else { continue };
        for dev in xs.directory(0, &format!("{root}/{dom}")).unwrap_or_default() {
            if let Ok(devid) = dev.parse::<u32>() {
                present.push((domid, devid));
            }
        }
    }
    present
}

/// The keys of `known` that are no longer `present` (their devices were removed).
pub fn removed<V>(known: &BTreeMap<(u16, u32), V>, present: &[(u16, u32)]) -> Vec<(u16, u32)> {
    known.keys().filter(|k| !present.contains(k)).copied().collect()
}

/// Writes `kv` under the back-end directory `be`, in one transaction and only while that
/// directory exists (as Linux's `xenbus_switch_state` writes `state` only while it can
/// read it): the toolstack may remove the directory (`xl destroy`) at any moment, and a
/// plain write after that would re-create it, a stale entry of a dead domain.
pub fn write_backend_keys<K: AsRef<str>>(xs: &mut Xs, be: &str, kv: &[(K, String)]) -> Result<()> {
    for _ in 0..16 {
        let tx = xs.transaction_start()?;
        if xs.read(tx, be).is_err() {
            let _ = xs.transaction_end(tx, false);
            return Ok(()); // removed: nobody to tell
        }
        for (k, v) in kv {
            if let Err(e) = xs.write(tx, &format!("{be}/{}", k.as_ref()), v.as_bytes()) {
                let _ = xs.transaction_end(tx, false);
                return Err(e.into());
            }
        }
        match xs.transaction_end(tx, true) {
            Err(xs::Error::Xs(xenstore_wire::Errno::EAGAIN)) => continue,
            r => return Ok(r?),
        }
    }
    Err(Error::Device(be.to_string(), "xenstore transaction kept conflicting".into()))
}

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

    /// A private xenstored on a socket in its own directory, and a client of it.
    fn store(name: &str) -> (Xs, std::path::PathBuf) {
        use crate::xenstored::server::{Options, Server};
        let dir = std::env::temp_dir().join(format!("daemon-test-{name}-{}", std::process::id()));
        let sock = dir.join("socket");
        let mut server = Server::new(Options { socket: sock.clone(), dom0_ring: false, verbose: false }).unwrap();
        std::thread::spawn(move || loop {
            server.step(50).unwrap();
        });
        (Xs::open_at(&sock).unwrap(), dir)
    }

    #[test]
    fn devices_listed_and_removed_ones_found() {
        let (mut xs, dir) = store("list");
        let root = "/local/domain/0/backend/qdisk";
        for p in ["3/51712", "3/51728", "4/51712", "junk/1", "5/junk"] {
            xs.write(0, &format!("{root}/{p}/state"), b"1").unwrap();
        }
        let mut present = list_devices(&mut xs, root);
        present.sort_unstable();
        assert_eq!(present, [(3, 51712), (3, 51728), (4, 51712)]);
        let known: BTreeMap<(u16, u32), ()> = [((3, 51712), ()), ((9, 1), ())].into_iter().collect();
        assert_eq!(removed(&known, &present), [(9, 1)]);
        assert!(list_devices(&mut xs, "/nowhere").is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn back_end_writes_never_recreate_a_removed_directory() {
        let (mut xs, dir) = store("writes");
        let be = "/local/domain/0/backend/vif/7/0";
        xs.write(0, &format!("{be}/state"), b"1").unwrap();
        write_backend_keys(&mut xs, be, &[("state", "2".to_string()), ("hotplug-status", "connected".to_string())]).unwrap();
        assert_eq!(xs.read_string(0, &format!("{be}/state")).unwrap(), "2");
        assert_eq!(xs.read_string(0, &format!("{be}/hotplug-status")).unwrap(), "connected");
        // `xl destroy` removed the device: the state change is dropped, nothing reappears.
        xs.rm(0, "/local/domain/0/backend/vif/7").unwrap();
        write_backend_keys(&mut xs, be, &[("state", "6".to_string())]).unwrap();
        assert!(xs.read(0, be).is_err());
        assert!(xs.read(0, "/local/domain/0/backend/vif/7").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn handshake_steps() {
        assert_eq!(next_step(Phase::InitWait, Some(INITIALISED)), Step::Connect);
        assert_eq!(next_step(Phase::InitWait, Some(CONNECTED)), Step::Connect);
        assert_eq!(next_step(Phase::InitWait, Some(1)), Step::Stay);
        assert_eq!(next_step(Phase::InitWait, None), Step::Close { disconnect: false });
        assert_eq!(next_step(Phase::InitWait, Some(CLOSING)), Step::Close { disconnect: false });
        assert_eq!(next_step(Phase::Connected, Some(CONNECTED)), Step::Stay);
        assert_eq!(next_step(Phase::Connected, Some(CLOSING)), Step::Close { disconnect: true });
        assert_eq!(next_step(Phase::Connected, None), Step::Close { disconnect: true });
        assert_eq!(next_step(Phase::Failed, None), Step::Stay);
        assert!(may_close(Phase::Closing, Some(CLOSED)) && may_close(Phase::Closing, None));
        assert!(!may_close(Phase::Closing, Some(CLOSING)) && !may_close(Phase::Connected, None));
    }

    #[test]
    fn errors_name_the_option() {
        assert_eq!(p(&["--pid-file"]).unwrap_err(), "--pid-file needs a value");
        assert_eq!(p(&["--frob"]).unwrap_err(), "unknown option `--frob`");
        assert_eq!(p(&["--verbose=1"]).unwrap_err(), "unknown option `--verbose`");
    }
}
