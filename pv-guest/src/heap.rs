//! Maps the kernel heap (window pages backed by our own frames) the first time a role
//! asks for one; `arch::x86_64::heap` is the allocator.

use crate::arch::x86_64::heap;
use crate::mm::pte;
use crate::paging;

/// Makes sure a heap of at least `mib` MiB exists (only the first call maps one).
pub fn ensure(mib: u64) -> Result<(), &'static str> {
    if heap::usage().0 != 0 {
        return Ok(());
    }
    let pages = mib * 256;
    let base = paging::alloc_window(pages).map_err(|_| "no window space for the heap")?;
    for i in 0..pages {
        let (_, mfn) = paging::alloc_frame().map_err(|_| "out of frames for the heap")?;
        paging::map(base + i * 4096, mfn, pte::KERNEL_RW).map_err(|_| "cannot map a heap page")?;
    }
    if heap::init(base, pages * 4096) {
        Ok(())
    } else {
        Err("heap refused")
    }
}
