//! Checked access to a PV guest's virtual memory: walk the guest's page tables from its
//! current L4, insist on present + user (+ writable for writes) at every level, and copy
//! through the direct map. Any failure is -EFAULT, as Xen's copy_{from,to}_guest.

use super::paging::{PTE_ADDR_MASK, PTE_P, PTE_PS, PTE_RW, PTE_US};
use super::phys;
use xen_abi::errno::Errno;
use zerocopy::{FromBytes, Immutable, IntoBytes};

pub use xen_abi::arch_x86_64::{HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};

fn canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1ffff
}

/// A guest address space, named by the MFN of its L4.
#[derive(Clone, Copy, Debug)]
pub struct GuestView {
    pub l4_mfn: u64,
}

impl GuestView {
    /// The physical address `va` maps to, if the guest may access it.
    pub fn translate(&self, va: u64, write: bool) -> Result<u64, Errno> {
        if !canonical(va) || (HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END).contains(&va) {
            return Err(Errno::EFAULT);
        }
        let need = PTE_P | PTE_US | if write { PTE_RW } else { 0 };
        let mut table = self.l4_mfn;
        for shift in [39u32, 30, 21, 12] {
            let index = ((va >> shift) & 0x1ff) as usize;
            let e = phys::read_entry(table, index);
            if e & need != need {
                return Err(Errno::EFAULT);
            }
            if shift != 12 && e & PTE_PS != 0 {
                return Err(Errno::EFAULT); // PV guests have no superpages
            }
            table = (e & PTE_ADDR_MASK) >> 12;
        }
        if !phys::frame_in_ram(table) {
            return Err(Errno::EFAULT);
        }
        Ok((table << 12) | (va & 0xfff))
    }

    pub fn copy_from(&self, va: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let mut done = 0;
        while done < buf.len() {
            let cur = va.checked_add(done as u64).ok_or(Errno::EFAULT)?;
            let n = (4096 - (cur & 0xfff) as usize).min(buf.len() - done);
            let pa = self.translate(cur, false)?;
            phys::read_bytes(pa, &mut buf[done..done + n]);
            done += n;
        }
        Ok(())
    }

    pub fn copy_to(&self, va: u64, data: &[u8]) -> Result<(), Errno> {
        let mut done = 0;
        while done < data.len() {
            let cur = va.checked_add(done as u64).ok_or(Errno::EFAULT)?;
            let n = (4096 - (cur & 0xfff) as usize).min(data.len() - done);
            let pa = self.translate(cur, true)?;
            phys::write_bytes(pa, &data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    pub fn read<T: FromBytes + IntoBytes>(&self, va: u64) -> Result<T, Errno> {
        let mut v = T::new_zeroed();
        self.copy_from(va, v.as_mut_bytes())?;
        Ok(v)
    }

    pub fn write<T: IntoBytes + Immutable>(&self, va: u64, value: &T) -> Result<(), Errno> {
        self.copy_to(va, value.as_bytes())
    }
}

impl GuestView {
    /// The L1 table and index that map `va`, if L4, L3 and L2 entries are present (a
    /// grant mapping is installed there). No permission check: the MMU checks the L1.
    pub fn l1_slot(&self, va: u64) -> Option<(u64, usize)> {
        if !canonical(va) || (HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END).contains(&va) {
            return None;
        }
        let mut table = self.l4_mfn;
        for shift in [39u32, 30, 21] {
            let e = phys::read_entry(table, ((va >> shift) & 0x1ff) as usize);
            if e & PTE_P == 0 || e & PTE_PS != 0 {
                return None;
            }
            table = (e & PTE_ADDR_MASK) >> 12;
            if !phys::frame_in_ram(table) {
                return None;
            }
        }
        Some((table, ((va >> 12) & 0x1ff) as usize))
    }
}
