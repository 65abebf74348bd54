//! The 2-level event-channel ABI, guest side: the upcall's scan of
//! `evtchn_upcall_pending`, `evtchn_pending_sel` and the pending/mask bitmaps, and
//! per-port dispatch counters.

use core::sync::atomic::{AtomicU32, Ordering};

/// `EVTCHN_2L_NR_CHANNELS` on a 64-bit guest.
pub const NR_PORTS: usize = 4096;
const BITS: usize = 64;

/// The words the scan reads and clears (shared_info + this vCPU's vcpu_info).
pub trait EventWords {
    /// Clears `evtchn_upcall_pending`.
    fn clear_upcall_pending(&self);
    /// Atomically exchanges `evtchn_pending_sel` with 0.
    fn take_selector(&self) -> u64;
    fn pending(&self, word: usize) -> u64;
    fn masked(&self, word: usize) -> u64;
    /// Atomically clears `bits` in `evtchn_pending[word]`.
    fn clear_pending(&self, word: usize, bits: u64);
    /// The ports of `word` bound to this vCPU (the others are another vCPU's to handle,
    /// though they share the word and so the selector bit).
    fn owned(&self, _word: usize) -> u64 {
        !0
    }
}

/// One upcall: clear `upcall_pending` first (an event raised during the scan sets it
/// again and is delivered on the way out), take the selector, then for every selected
/// word handle the pending, unmasked ports bound to this vCPU, clearing each pending bit before its
/// handler runs. Repeats until the selector is empty. Returns the ports handled.
pub fn scan(ev: &impl EventWords, mut handle: impl FnMut(u32)) -> usize {
    let mut handled = 0;
    loop {
        ev.clear_upcall_pending();
        let mut sel = ev.take_selector();
        if sel == 0 {
            return handled;
        }
        while sel != 0 {
            let word = sel.trailing_zeros() as usize;
            sel &= sel - 1;
            let mut bits = ev.pending(word) & !ev.masked(word) & ev.owned(word);
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                ev.clear_pending(word, 1 << bit);
                handle((word * BITS + bit) as u32);
                handled += 1;
            }
        }
    }
}

/// `(word, bit)` of a port in the bitmaps.
pub const fn port_position(port: u32) -> (usize, u64) {
    (port as usize / BITS, 1 << (port as usize % BITS))
}

/// How many times each port was dispatched.
#[derive(Debug)]
pub struct PortCounters([AtomicU32; NR_PORTS]);

impl PortCounters {
    pub const fn new() -> Self {
        Self([const { AtomicU32::new(0) }; NR_PORTS])
    }

    pub fn record(&self, port: u32) {
        if let Some(c) = self.0.get(port as usize) {
            c.fetch_add(1, Ordering::AcqRel);
        }
    }

    pub fn count(&self, port: u32) -> u32 {
        self.0.get(port as usize).map_or(0, |c| c.load(Ordering::Acquire))
    }
}

impl Default for PortCounters {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    struct Fake {
        upcall_pending: Cell<bool>,
        sel: Cell<u64>,
        pending: RefCell<[u64; 64]>,
        mask: RefCell<[u64; 64]>,
        /// Raised from inside a handler: (after this many handled, port).
        raise_during: Cell<Option<(usize, u32)>>,
    }

    impl Default for Fake {
        fn default() -> Self {
            Fake {
                upcall_pending: Cell::new(false),
                sel: Cell::new(0),
                pending: RefCell::new([0; 64]),
                mask: RefCell::new([0; 64]),
                raise_during: Cell::new(None),
            }
        }
    }

    impl Fake {
        /// What Xen's evtchn_2l_set_pending does.
        fn raise(&self, port: u32) {
            let (w, b) = port_position(port);
            let was = self.pending.borrow()[w] & b != 0;
            self.pending.borrow_mut()[w] |= b;
            if !was && self.mask.borrow()[w] & b == 0 && self.sel.get() & (1 << w) == 0 {
                self.sel.set(self.sel.get() | 1 << w);
                self.upcall_pending.set(true);
            }
        }
    }

    impl EventWords for Fake {
        fn clear_upcall_pending(&self) {
            self.upcall_pending.set(false);
        }
        fn take_selector(&self) -> u64 {
            self.sel.replace(0)
        }
        fn pending(&self, w: usize) -> u64 {
            self.pending.borrow()[w]
        }
        fn masked(&self, w: usize) -> u64 {
            self.mask.borrow()[w]
        }
        fn clear_pending(&self, w: usize, bits: u64) {
            self.pending.borrow_mut()[w] &= !bits;
        }
    }

    #[test]
    fn dispatches_pending_unmasked_ports_in_order() {
        let f = Fake::default();
        for p in [3, 64, 65, 4095] {
            f.raise(p);
        }
        f.mask.borrow_mut()[1] |= 1 << 1; // 65 masked after being raised
        let mut seen = vec![];
        assert_eq!(scan(&f, |p| seen.push(p)), 3);
        assert_eq!(seen, [3, 64, 4095]);
        assert!(!f.upcall_pending.get());
        assert_eq!(f.sel.get(), 0);
        // The masked port stays pending for when it is unmasked.
        assert_eq!(f.pending.borrow()[1], 1 << 1);
    }

    #[test]
    fn masked_raise_does_not_select() {
        let f = Fake::default();
        f.mask.borrow_mut()[0] = 1 << 7;
        f.raise(7);
        assert!(!f.upcall_pending.get());
        assert_eq!(scan(&f, |_| panic!("masked port dispatched")), 0);
    }

    #[test]
    fn event_raised_during_scan_is_handled() {
        let f = Fake::default();
        f.raise(1);
        f.raise_during.set(Some((1, 200)));
        let mut seen = vec![];
        let n = scan(&f, |p| {
            seen.push(p);
            if let Some((after, port)) = f.raise_during.get() {
                if seen.len() == after {
                    f.raise_during.set(None);
                    f.raise(port);
                }
            }
        });
        assert_eq!((n, seen), (2, vec![1, 200]));
    }

    /// A vCPU's scan leaves alone the ports bound to another vCPU, pending in the same word.
    #[test]
    fn skips_ports_of_other_vcpus() {
        struct Mine<'a>(&'a Fake, u64);
        impl EventWords for Mine<'_> {
            fn clear_upcall_pending(&self) {
                self.0.clear_upcall_pending()
            }
            fn take_selector(&self) -> u64 {
                self.0.take_selector()
            }
            fn pending(&self, w: usize) -> u64 {
                self.0.pending(w)
            }
            fn masked(&self, w: usize) -> u64 {
                self.0.masked(w)
            }
            fn clear_pending(&self, w: usize, bits: u64) {
                self.0.clear_pending(w, bits)
            }
            fn owned(&self, w: usize) -> u64 {
                if w == 0 {
                    self.1
                } else {
                    !0
                }
            }
        }
        let f = Fake::default();
        f.raise(2);
        f.raise(5);
        let mut seen = vec![];
        assert_eq!(scan(&Mine(&f, !(1 << 5)), |p| seen.push(p)), 1);
        assert_eq!(seen, [2]);
        assert_eq!(f.pending.borrow()[0], 1 << 5, "another vCPU's port stays pending");
    }

    #[test]
    fn counters() {
        let c = PortCounters::new();
        c.record(5);
        c.record(5);
        c.record(9999);
        assert_eq!((c.count(5), c.count(6), c.count(9999)), (2, 0, 0));
        assert_eq!(port_position(130), (2, 4));
    }
}
