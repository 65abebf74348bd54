//! xenconsoled: finds guests with a console ring (`/local/domain/N/console/ring-ref`
//! and `port`), maps each ring, appends what the guest writes to
//! `<log_dir>/guest-<name>.log` (which `xl console --no-follow` prints), and gives each
//! guest a pty whose slave path it writes to `/local/domain/N/console/tty`, as Xen's
//! xenconsoled does: output goes to the pty too, and what is typed on the pty (by
//! `xl console`, `screen`, ...) goes into the ring's `in` side. Domains that disappear
//! are unmapped so Xen can free their memory. The ring's two ends are
//! `frontend_drivers::console`; a guest publishing impossible indices gets nothing read
//! or written (and cannot make this loop spin: the pty is only polled for input while
//! the ring has room).

use crate::console::{Pending, Pty};
use crate::sys::{self, Evtchn, Privcmd};
use crate::xs::Xs;
use frontend_drivers::console::{input_room, put_input, take_output};
use frontend_drivers::SharedPage;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use xen_abi::console::{XENCONS_IN_SIZE, XENCONS_OUT_SIZE};

impl SharedPage for sys::Mapping {
    fn load_u32(&self, off: usize) -> u32 {
        sys::Mapping::load_u32(self, off)
    }
    fn store_u32(&self, off: usize, v: u32) {
        sys::Mapping::store_u32(self, off, v)
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        sys::Mapping::read(self, off, buf)
    }
    fn write(&self, off: usize, data: &[u8]) {
        sys::Mapping::write(self, off, data)
    }
}

/// A line on stderr (the daemon's log). Unlike `eprintln!`, a log that cannot be written
/// (a full file system) does not take the daemon down.
fn note(msg: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "xenconsoled: {msg}");
}

/// A guest console's pty and the output it has not taken yet.
#[derive(Debug)]
pub struct Tty {
    pub pty: Pty,
    pub pending: Pending,
}

impl Tty {
    pub fn new(pty: Pty) -> Tty {
        Tty { pty, pending: Pending::default() }
    }
}

/// Moves one guest's console once: output from the ring to `log` and the pty, input from
/// the pty into the ring (as much as it has room for). Returns whether the guest should
/// be notified (something was taken or put).
pub fn pump_console<P: SharedPage>(page: &P, log: &mut dyn Write, tty: Option<&mut Tty>) -> bool {
    let mut buf = [0u8; XENCONS_OUT_SIZE];
    let n = take_output(page, &mut buf).unwrap_or(0);
    if n > 0 {
        let _ = log.write_all(&buf[..n]);
    }
    let typed = match tty {
        Some(t) => {
            t.pending.push(&buf[..n]);
            pump_tty(page, t)
        }
        None => false,
    };
    n > 0 || typed
}

fn pump_tty<P: SharedPage>(page: &P, t: &mut Tty) -> bool {
    // Output nobody reads stays in the pty (and then in `pending`, bounded). A pty that
    // fails outright is not polled for output again (the log still has it).
    if t.pending.flush_to(&t.pty.master).is_err() {
        t.pending.clear();
    }
    let room = input_room(page).unwrap_or(0);
    if room == 0 {
        return false;
    }
    let mut inb = [0u8; XENCONS_IN_SIZE];
    let n = t.pty.read_input(&mut inb[..room.min(XENCONS_IN_SIZE)]);
    n > 0 && put_input(page, &inb[..n]).is_ok_and(|k| k > 0)
}

/// What to poll a guest's pty for: input while the ring has room, output while some waits.
pub fn tty_events<P: SharedPage>(page: &P, t: &Tty) -> i16 {
    let mut ev = 0;
    if input_room(page).is_ok_and(|r| r > 0) {
        ev |= libc::POLLIN;
    }
    if !t.pending.is_empty() {
        ev |= libc::POLLOUT;
    }
    ev
}

#[derive(Debug)]
struct Guest {
    page: sys::Mapping,
    port: u32,
    log: std::fs::File,
    tty: Option<Tty>,
}

#[derive(Debug)]
pub struct Consoled {
    log_dir: PathBuf,
    xs: Xs,
    pc: Privcmd,
    ev: Evtchn,
    guests: BTreeMap<u32, Guest>,
}

impl Consoled {
    pub fn new(log_dir: PathBuf) -> std::io::Result<Consoled> {
        std::fs::create_dir_all(&log_dir)?;
        let xs = Xs::open().map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Consoled { log_dir, xs, pc: Privcmd::open()?, ev: Evtchn::open()?, guests: BTreeMap::new() })
    }

    /// Attaches new guests and drops vanished ones.
    fn scan(&mut self) {
        let doms: Vec<u32> = self.xs.directory(0, "/local/domain").unwrap_or_default().iter().filter_map(|d| d.parse().ok()).collect();
        let gone: Vec<u32> = self.guests.keys().copied().filter(|d| !doms.contains(d)).collect();
        for d in gone {
            if let Some(g) = self.guests.remove(&d) {
                let _ = self.ev.unbind(g.port);
            }
        }
        for d in doms {
            if d == 0 || self.guests.contains_key(&d) {
                continue;
            }
            let base = format!("/local/domain/{d}");
            let num = |xs: &mut Xs, k: &str| xs.read_string(0, &format!("{base}/{k}")).ok().and_then(|s| s.trim().parse::<u64>().ok());
            let (Some(mfn), Some(port)) = (num(&mut self.xs, "console/ring-ref"), num(&mut self.xs, "console/port")) else { continue };
            let name = self.xs.read_string(0, &format!("{base}/name")).unwrap_or_else(|_| format!("dom{d}"));
            let attach = || -> std::io::Result<Guest> {
                let page = self.pc.map_foreign(d as u16, &[mfn])?;
                let local = self.ev.bind_interdomain(d, port as u32)?;
                let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_dir.join(format!("guest-{name}.log")))?;
                Ok(Guest { page, port: local, log, tty: None })
            };
            let mut g = match attach() {
                Ok(g) => g,
                Err(e) => {
                    note(format_args!("domain {d}: {e}"));
                    continue;
                }
            };
            // The pty, published only while the domain's console directory exists (a
            // racing `xl destroy` must not get it back as a stale entry).
            match Pty::open() {
                Ok(pty) => match crate::daemon::write_backend_keys(&mut self.xs, &format!("{base}/console"), &[("tty", pty.path.clone())]) {
                    Ok(()) => g.tty = Some(Tty::new(pty)),
                    Err(e) => note(format_args!("domain {d}: console/tty: {e}")),
                },
                Err(e) => note(format_args!("domain {d}: no pty: {e}")),
            }
            self.guests.insert(d, g);
        }
    }

    fn pump(&mut self) {
        for g in self.guests.values_mut() {
            if pump_console(&g.page, &mut g.log, g.tty.as_mut()) {
                let _ = self.ev.notify(g.port);
            }
        }
    }

    /// The fds to wait on: event channels, xenstore, and each pty for what it can do now.
    fn poll_set(&self) -> Vec<(std::os::fd::RawFd, i16)> {
        let mut fds = vec![(self.ev.fd(), libc::POLLIN), (self.xs.fd(), libc::POLLIN)];
        for g in self.guests.values() {
            if let Some(t) = &g.tty {
                fds.push((t.pty.master.as_raw_fd(), tty_events(&g.page, t)));
            }
        }
        fds
    }

    /// Event-driven: guests come and go with `@introduceDomain` / `@releaseDomain`
    /// (and xl's writes below `/local/domain`), output arrives with their event
    /// channels, input with their ptys. A slow rescan every 2 s covers anything missed.
    pub fn run(&mut self) -> std::io::Result<()> {
        let err = |e: crate::xs::Error| std::io::Error::other(e.to_string());
        self.xs.watch("@introduceDomain", "intro").map_err(err)?;
        self.xs.watch("@releaseDomain", "release").map_err(err)?;
        self.xs.events.clear();
        self.scan();
        let mut last_scan = Instant::now();
        loop {
            let ready = sys::poll_events(&self.poll_set(), 2000)?;
            if ready[0] != 0 {
                let _ = self.ev.pending();
            }
            let mut rescan = last_scan.elapsed() > Duration::from_secs(2);
            if ready[1] != 0 {
                self.xs.read_event().map_err(err)?;
                rescan = true;
            }
            if rescan {
                self.scan();
                self.xs.events.clear();
                last_scan = Instant::now();
            }
            self.pump();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::open_tty;
    use frontend_drivers::console::ConsoleRing;
    use frontend_drivers::{MemPage, Notify};
    use std::mem::offset_of;
    use xen_abi::console::XenconsInterface as Cons;

    struct NoWait;
    impl Notify for NoWait {
        fn notify(&self) {}
        fn wait(&self) -> bool {
            false
        }
    }

    fn read_tty(fd: &std::os::fd::OwnedFd) -> Vec<u8> {
        std::thread::sleep(Duration::from_millis(20));
        let mut b = [0u8; 8192];
        match rustix::io::read(fd, &mut b[..]) {
            Ok(n) => b[..n].to_vec(),
            Err(_) => Vec::new(),
        }
    }

    #[test]
    fn output_reaches_log_and_pty_input_reaches_the_ring() {
        let page = MemPage::new();
        let guest = ConsoleRing::new(&page, NoWait);
        let mut tty = Tty::new(Pty::open().unwrap());
        let xl = open_tty(&tty.pty.path).unwrap();
        let mut log = Vec::new();
        assert!(!pump_console(&page, &mut log, Some(&mut tty)));
        guest.write(b"login: ");
        assert!(pump_console(&page, &mut log, Some(&mut tty)));
        assert_eq!(log, b"login: ");
        assert_eq!(read_tty(&xl), b"login: ");
        rustix::io::write(&xl, b"root\n").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(tty_events(&page, &tty), libc::POLLIN);
        assert!(pump_console(&page, &mut log, Some(&mut tty)));
        let mut got = [0u8; 16];
        assert_eq!(guest.read(&mut got), 5);
        assert_eq!(&got[..5], b"root\n");
        // Without a pty (none could be opened) output still goes to the log.
        guest.write(b"x");
        assert!(pump_console(&page, &mut log, None));
        assert_eq!(log, b"login: x");
    }

    #[test]
    fn input_waits_while_the_guest_does_not_read() {
        let page = MemPage::new();
        let guest = ConsoleRing::new(&page, NoWait);
        let mut tty = Tty::new(Pty::open().unwrap());
        let xl = open_tty(&tty.pty.path).unwrap();
        let typed: Vec<u8> = (0..1500u32).map(|i| b'a' + (i % 26) as u8).collect();
        rustix::io::write(&xl, &typed).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let mut log = Vec::new();
        assert!(pump_console(&page, &mut log, Some(&mut tty)));
        // The ring is full: the pty is not polled for input and nothing more moves.
        assert_eq!(tty_events(&page, &tty), 0);
        assert!(!pump_console(&page, &mut log, Some(&mut tty)));
        let mut got = vec![0u8; 2048];
        let n = guest.read(&mut got);
        assert_eq!(n, XENCONS_IN_SIZE);
        assert!(pump_console(&page, &mut log, Some(&mut tty)));
        let m = guest.read(&mut got[n..]);
        assert_eq!(&got[..n + m], &typed[..]);
    }

    #[test]
    fn hostile_indices_move_nothing_and_never_block() {
        let page = MemPage::new();
        let mut tty = Tty::new(Pty::open().unwrap());
        let xl = open_tty(&tty.pty.path).unwrap();
        rustix::io::write(&xl, b"typed").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        for (ic, ip, oc, op) in [(0u32, 4096u32, 0u32, 4096u32), (7, 3, 9, 2), (u32::MAX, 2000, 1, u32::MAX)] {
            page.store_u32(offset_of!(Cons, in_cons), ic);
            page.store_u32(offset_of!(Cons, in_prod), ip);
            page.store_u32(offset_of!(Cons, out_cons), oc);
            page.store_u32(offset_of!(Cons, out_prod), op);
            let mut log = Vec::new();
            assert!(!pump_console(&page, &mut log, Some(&mut tty)));
            assert!(log.is_empty());
            assert_eq!(tty_events(&page, &tty), 0, "no input poll while the ring is corrupt");
            assert_eq!(page.load_u32(offset_of!(Cons, in_prod)), ip);
            assert_eq!(page.load_u32(offset_of!(Cons, out_cons)), oc);
        }
        // Once the guest publishes sane indices again, the input that waited moves.
        for f in [offset_of!(Cons, in_cons), offset_of!(Cons, in_prod), offset_of!(Cons, out_cons), offset_of!(Cons, out_prod)] {
            page.store_u32(f, 0);
        }
        let mut log = Vec::new();
        assert!(pump_console(&page, &mut log, Some(&mut tty)));
        assert_eq!(page.load_u32(offset_of!(Cons, in_prod)), 5);
    }

    #[test]
    fn output_nobody_reads_is_bounded() {
        let page = MemPage::new();
        let guest = ConsoleRing::new(&page, NoWait);
        let mut tty = Tty::new(Pty::open().unwrap());
        let mut log = Vec::new();
        let chunk = [b'z'; 2000];
        for _ in 0..200 {
            guest.write(&chunk);
            assert!(pump_console(&page, &mut log, Some(&mut tty)));
        }
        assert_eq!(log.len(), 400_000);
        assert!(tty.pending.len() <= crate::console::PENDING_LIMIT);
        assert_eq!(tty_events(&page, &tty) & libc::POLLOUT, libc::POLLOUT);
        // ... and a full pty does not wake the poll loop: no spinning while nobody reads.
        let ready = sys::poll_events(&[(tty.pty.master.as_raw_fd(), libc::POLLOUT)], 0).unwrap();
        assert_eq!(ready, [0]);
    }
}
