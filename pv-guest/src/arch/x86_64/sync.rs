//! A spin lock for the kernel's global state. Held by another vCPU, it spins (yielding
//! the physical CPU, which the holder may be waiting for); held by the vCPU asking, the
//! only way is re-entry (an upcall or fault while the lock is held), which is a bug: it
//! panics instead of spinning forever.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// `owner` while nobody holds the lock.
const NO_OWNER: usize = usize::MAX;

pub struct SpinLock<T> {
    locked: AtomicBool,
    /// The holder's vCPU id (set after taking `locked`, reset before releasing it).
    owner: AtomicUsize,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialised by `locked` (see `lock`).
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> core::fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SpinLock")
    }
}

impl<T> SpinLock<T> {
    pub const fn new(value: T) -> Self {
        Self { locked: AtomicBool::new(false), owner: AtomicUsize::new(NO_OWNER), value: UnsafeCell::new(value) }
    }

    /// The guard, or `None` when the lock is held (by the code this one interrupted).
    pub fn try_lock(&self) -> Option<Guard<'_, T>> {
        (!self.locked.swap(true, Ordering::Acquire)).then(|| self.taken())
    }

    fn taken(&self) -> Guard<'_, T> {
        self.owner.store(super::smp::current(), Ordering::Relaxed);
        Guard { lock: self }
    }

    pub fn lock(&self) -> Guard<'_, T> {
        let me = super::smp::current();
        let mut spins = 0u32;
        while self.locked.swap(true, Ordering::Acquire) {
            // Only this vCPU writes its own id into `owner`, and clears it before
            // releasing: seeing it means this vCPU holds the lock.
            if self.owner.load(Ordering::Relaxed) == me {
                panic!("SpinLock re-entered on vCPU {me} (would deadlock)");
            }
            spins += 1;
            if spins.is_multiple_of(64) {
                crate::hv::sched_yield();
            } else {
                core::hint::spin_loop();
            }
        }
        self.taken()
    }
}

#[derive(Debug)]
pub struct Guard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while `locked` is held by us.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only access.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.lock.owner.store(NO_OWNER, Ordering::Relaxed);
        self.lock.locked.store(false, Ordering::Release);
    }
}
