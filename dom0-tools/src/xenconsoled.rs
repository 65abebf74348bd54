//! xenconsoled: finds guests with a console ring (`/local/domain/N/console/ring-ref`
//! and `port`), maps each ring, and appends what the guest writes to
//! `<log_dir>/guest-<name>.log` (which `xl console` follows). Domains that disappear
//! are unmapped so Xen can free their memory.

use crate::sys::{self, Evtchn, Privcmd};
use xenstore_wire::server_ring::Page;
use crate::xs::Xs;
use std::collections::BTreeMap;
use std::io::Write;
use std::mem::offset_of;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use xen_abi::console::{mask_xencons_out_idx, XenconsInterface as Cons, XENCONS_OUT_SIZE};

const OUT: usize = offset_of!(Cons, out);
const OUT_CONS: usize = offset_of!(Cons, out_cons);
const OUT_PROD: usize = offset_of!(Cons, out_prod);

#[derive(Debug, PartialEq, Eq)]
pub struct Overrun;

/// Takes everything the guest wrote to the console's `out` ring.
pub fn drain_output<P: Page>(p: &P, into: &mut Vec<u8>) -> Result<usize, Overrun> {
    let cons = p.load_u32(OUT_CONS);
    let prod = p.load_u32(OUT_PROD);
    let n = prod.wrapping_sub(cons) as usize;
    if n > XENCONS_OUT_SIZE {
        return Err(Overrun);
    }
    for i in 0..n {
        let mut b = [0u8];
        p.read(OUT + mask_xencons_out_idx(cons.wrapping_add(i as u32)), &mut b);
        into.push(b[0]);
    }
    if n > 0 {
        p.store_u32(OUT_CONS, prod);
    }
    Ok(n)
}

#[derive(Debug)]
struct Guest {
    page: sys::Mapping,
    port: u32,
    log: std::fs::File,
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
                Ok(Guest { page, port: local, log })
            };
            match attach() {
                Ok(g) => {
                    self.guests.insert(d, g);
                }
                Err(e) => eprintln!("xenconsoled: domain {d}: {e}"),
            }
        }
    }

    fn pump(&mut self) {
        for g in self.guests.values_mut() {
            let mut out = Vec::new();
            match drain_output(&g.page, &mut out) {
                Ok(n) if n > 0 => {
                    let _ = g.log.write_all(&out);
                    let _ = self.ev.notify(g.port);
                }
                _ => {}
            }
        }
    }

    /// Event-driven: guests come and go with `@introduceDomain` / `@releaseDomain`
    /// (and xl's writes below `/local/domain`), output arrives with their event
    /// channels. A slow rescan every 2 s covers anything missed.
    pub fn run(&mut self) -> std::io::Result<()> {
        let err = |e: crate::xs::Error| std::io::Error::other(e.to_string());
        self.xs.watch("@introduceDomain", "intro").map_err(err)?;
        self.xs.watch("@releaseDomain", "release").map_err(err)?;
        self.xs.events.clear();
        self.scan();
        let mut last_scan = Instant::now();
        loop {
            let ready = sys::poll_readable(&[self.ev.fd(), self.xs.fd()], 2000)?;
            if ready[0] {
                let _ = self.ev.pending();
            }
            let mut rescan = last_scan.elapsed() > Duration::from_secs(2);
            if ready[1] {
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
    use std::cell::RefCell;

    struct Mem(RefCell<Vec<u8>>);
    impl Page for Mem {
        fn load_u32(&self, off: usize) -> u32 {
            u32::from_le_bytes(self.0.borrow()[off..off + 4].try_into().unwrap())
        }
        fn store_u32(&self, off: usize, v: u32) {
            self.0.borrow_mut()[off..off + 4].copy_from_slice(&v.to_le_bytes())
        }
        fn read(&self, off: usize, buf: &mut [u8]) {
            buf.copy_from_slice(&self.0.borrow()[off..off + buf.len()])
        }
        fn write(&self, off: usize, data: &[u8]) {
            self.0.borrow_mut()[off..off + data.len()].copy_from_slice(data)
        }
    }

    #[test]
    fn drains_wrapped_output_and_rejects_overruns() {
        let m = Mem(RefCell::new(vec![0; 4096]));
        let start = 2040u32;
        m.store_u32(OUT_CONS, start);
        for (i, b) in b"hello, world".iter().enumerate() {
            m.write(OUT + mask_xencons_out_idx(start + i as u32), &[*b]);
        }
        m.store_u32(OUT_PROD, start + 12);
        let mut v = Vec::new();
        assert_eq!(drain_output(&m, &mut v), Ok(12));
        assert_eq!(v, b"hello, world");
        assert_eq!(drain_output(&m, &mut v), Ok(0));
        m.store_u32(OUT_PROD, start + 12 + 5000);
        assert_eq!(drain_output(&m, &mut v), Err(Overrun));
    }
}
