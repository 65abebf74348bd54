//! Reads of physical memory through the boot identity map (first 4 GiB).

use crate::multiboot::{MultibootError, PhysRead};

/// The limit of the boot page tables built in `boot.s`.
const IDENTITY_MAPPED: u64 = 4 << 30;

#[derive(Debug)]
pub struct IdentityMapped;

impl PhysRead for IdentityMapped {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), MultibootError> {
        let len = buf.len() as u64;
        let err = MultibootError::Unreadable { paddr, len };
        let end = paddr.checked_add(len).ok_or(err)?;
        // Page 0 stays unreadable so a null pointer from a loader is an error.
        if paddr < 4096 || end > IDENTITY_MAPPED {
            return Err(err);
        }
        // SAFETY: [paddr, end) lies inside the identity map set up in boot.s, so the
        // addresses are mapped; the bytes are copied out with volatile reads because a
        // loader's data is not a Rust object and may alias nothing we own.
        for (i, b) in buf.iter_mut().enumerate() {
            *b = unsafe { core::ptr::read_volatile((paddr as usize + i) as *const u8) };
        }
        Ok(())
    }
}
