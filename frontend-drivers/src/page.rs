//! The two things a front-end needs from its environment.

use core::sync::atomic::{AtomicU32, Ordering};

/// A page shared with a peer. Index words are read with acquire and written with
/// release ordering, so data written before an index store is visible to a peer that
/// loads the index (Xen's `wmb()`/`rmb()` pairs); data bytes are plain copies.
pub trait SharedPage {
    fn load_u32(&self, off: usize) -> u32;
    fn store_u32(&self, off: usize, v: u32);
    fn read(&self, off: usize, buf: &mut [u8]);
    fn write(&self, off: usize, data: &[u8]);
}

/// The event channel to the peer.
pub trait Notify {
    /// Signals the peer (EVTCHNOP_send).
    fn notify(&self);
    /// Waits for the peer to make progress (an event, or a yield). Returning `false`
    /// gives up: the driver reports a timeout instead of waiting again.
    fn wait(&self) -> bool;
}

/// A page in ordinary memory: for host tests and fake peers.
#[derive(Debug)]
pub struct MemPage {
    words: [AtomicU32; 1024],
}

impl Default for MemPage {
    fn default() -> Self {
        Self::new()
    }
}

impl MemPage {
    pub const fn new() -> Self {
        Self { words: [const { AtomicU32::new(0) }; 1024] }
    }

    fn byte(&self, off: usize) -> u8 {
        (self.words[off / 4].load(Ordering::Acquire) >> (8 * (off % 4))) as u8
    }

    fn set_byte(&self, off: usize, b: u8) {
        let shift = 8 * (off % 4);
        let _ = self.words[off / 4].fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
            Some((w & !(0xff << shift)) | (u32::from(b) << shift))
        });
    }
}

impl SharedPage for MemPage {
    fn load_u32(&self, off: usize) -> u32 {
        assert!(off.is_multiple_of(4));
        self.words[off / 4].load(Ordering::Acquire)
    }
    fn store_u32(&self, off: usize, v: u32) {
        assert!(off.is_multiple_of(4));
        self.words[off / 4].store(v, Ordering::Release);
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.byte(off + i);
        }
    }
    fn write(&self, off: usize, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            self.set_byte(off + i, b);
        }
    }
}

impl<P: SharedPage + ?Sized> SharedPage for &P {
    fn load_u32(&self, off: usize) -> u32 {
        (**self).load_u32(off)
    }
    fn store_u32(&self, off: usize, v: u32) {
        (**self).store_u32(off, v)
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        (**self).read(off, buf)
    }
    fn write(&self, off: usize, data: &[u8]) {
        (**self).write(off, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_words() {
        let p = MemPage::new();
        p.write(5, b"abc");
        let mut b = [0; 3];
        p.read(5, &mut b);
        assert_eq!(&b, b"abc");
        p.store_u32(8, 0x11223344);
        assert_eq!(p.load_u32(8), 0x11223344);
        p.read(4, &mut b);
        assert_eq!(b, [0, b'a', b'b']);
    }
}
