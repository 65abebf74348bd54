//! The machine-frame allocator: one bit per frame (set = free), over a bitmap the caller
//! provides. Portable: the arch code hands it RAM from the memory map.

/// A frame allocator over `bits.len() * 64` frames starting at MFN 0.
#[derive(Debug)]
pub struct FrameAllocator<'a> {
    bits: &'a mut [u64],
    free: u64,
    /// Where the next search starts, so repeated allocation is not quadratic.
    hint: usize,
}

impl<'a> FrameAllocator<'a> {
    /// Every frame starts used; [`Self::add_free_range`] hands RAM over.
    pub fn new(bits: &'a mut [u64]) -> Self {
        bits.fill(0);
        Self { bits, free: 0, hint: 0 }
    }

    pub fn capacity(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    pub fn free_frames(&self) -> u64 {
        self.free
    }

    pub fn is_free(&self, mfn: u64) -> bool {
        self.bits[(mfn / 64) as usize] & (1 << (mfn % 64)) != 0
    }

    fn set(&mut self, mfn: u64, free: bool) {
        let (w, b) = ((mfn / 64) as usize, mfn % 64);
        if free {
            self.bits[w] |= 1 << b;
        } else {
            self.bits[w] &= !(1 << b);
        }
    }

    /// Marks frames `[start, end)` free (clamped to capacity). Frames already free stay so.
    pub fn add_free_range(&mut self, start: u64, end: u64) {
        for mfn in start..end.min(self.capacity()) {
            if !self.is_free(mfn) {
                self.set(mfn, true);
                self.free += 1;
            }
        }
    }

    /// Marks frames `[start, end)` used (e.g. the image, modules).
    pub fn reserve_range(&mut self, start: u64, end: u64) {
        for mfn in start..end.min(self.capacity()) {
            if self.is_free(mfn) {
                self.set(mfn, false);
                self.free -= 1;
            }
        }
    }

    pub fn alloc(&mut self) -> Option<u64> {
        let n = self.bits.len();
        for i in 0..n {
            let w = (self.hint + i) % n;
            if self.bits[w] != 0 {
                let mfn = w as u64 * 64 + u64::from(self.bits[w].trailing_zeros());
                self.set(mfn, false);
                self.free -= 1;
                self.hint = w;
                return Some(mfn);
            }
        }
        None
    }

    /// `count` contiguous frames whose first MFN is a multiple of `align` (a power of two).
    pub fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<u64> {
        if count == 0 || !align.is_power_of_two() {
            return None;
        }
        let mut start = 0;
        while start + count <= self.capacity() {
            match (start..start + count).find(|&m| !self.is_free(m)) {
                None => {
                    self.reserve_range(start, start + count);
                    return Some(start);
                }
                Some(used) => start = (used + 1).next_multiple_of(align),
            }
        }
        None
    }

    /// Returns a frame. Freeing a frame that is already free is a hypervisor bug, reported
    /// as `false` rather than corrupting the count.
    pub fn free(&mut self, mfn: u64) -> bool {
        if mfn >= self.capacity() || self.is_free(mfn) {
            return false;
        }
        self.set(mfn, true);
        self.free += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_only_free_ram_and_takes_it_back() {
        let mut bits = [0u64; 4];
        let mut a = FrameAllocator::new(&mut bits);
        a.add_free_range(10, 20);
        a.reserve_range(12, 14);
        assert_eq!(a.free_frames(), 8);
        let got: Vec<u64> = std::iter::from_fn(|| a.alloc()).collect();
        assert_eq!(got, [10, 11, 14, 15, 16, 17, 18, 19]);
        assert_eq!(a.free_frames(), 0);
        assert!(a.free(15));
        assert!(!a.free(15), "double free is refused");
        assert!(!a.free(1000), "out of range is refused");
        assert_eq!(a.alloc(), Some(15));
    }

    #[test]
    fn contiguous_and_aligned() {
        let mut bits = [0u64; 8];
        let mut a = FrameAllocator::new(&mut bits);
        a.add_free_range(3, 300);
        a.reserve_range(100, 101);
        assert_eq!(a.alloc_contiguous(64, 64), Some(128));
        assert_eq!(a.alloc_contiguous(90, 1), Some(3));
        assert_eq!(a.alloc_contiguous(1000, 1), None);
        assert_eq!(a.alloc_contiguous(1, 3), None);
    }

    #[test]
    fn ranges_clamp_to_capacity() {
        let mut bits = [0u64; 1];
        let mut a = FrameAllocator::new(&mut bits);
        a.add_free_range(60, 1 << 40);
        assert_eq!(a.free_frames(), 4);
    }
}
