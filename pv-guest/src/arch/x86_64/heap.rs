//! The kernel heap (`alloc`): a linked-list allocator over window pages that
//! `crate::heap` maps when a role first needs it. Until then every allocation fails
//! (and `alloc` panics, which the panic handler reports as a crash).

use crate::mm::{PAGE_SIZE, VMAP_END, VMAP_START};
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Hands `[va, va + len)` to the allocator: window pages the caller mapped writable for
/// the life of the domain and uses for nothing else. Refused (false) when a heap
/// already exists or the range is not whole window pages.
pub fn init(va: u64, len: u64) -> bool {
    let ok = va.is_multiple_of(PAGE_SIZE)
        && len.is_multiple_of(PAGE_SIZE)
        && len > 0
        && va >= VMAP_START
        && va.checked_add(len).is_some_and(|end| end <= VMAP_END);
    let mut heap = HEAP.lock();
    if !ok || heap.size() != 0 {
        return false;
    }
    // SAFETY: the range is whole pages inside the window (checked), which the caller
    // mapped writable and never unmaps or uses otherwise; the allocator owns it from now
    // on, and it is handed over once (an existing heap refuses, checked above).
    unsafe { heap.init(va as *mut u8, len as usize) };
    true
}

/// Bytes of the heap (0: none yet) and bytes in use.
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.size(), heap.used())
}
