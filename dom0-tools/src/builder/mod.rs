//! The PV domain builder: creates a domain, gives it memory, loads the kernel (ELF with
//! Xen notes, parsed by xen-core's `domain::elf`; a bzImage or a gzip/xz/zstd file is
//! unpacked first by `kernel-image`, as libxenguest's `xc_dom_bzimageloader`), writes the P2M list, `start_info`,
//! the xenstore and console rings and the initial page tables, pins the L4 and loads
//! vCPU 0's context. The domain is left paused.

pub mod layout;

use crate::xc::{self, Xc};
use layout::{domu_layout, page_tables, DomuLayout, PAGE};
use std::borrow::Cow;
use xen_abi::arch_x86_64::{VcpuGuestContext, Vgcf, FLAT_KERNEL_CS, FLAT_KERNEL_SS};
use std::mem::offset_of;
use xen_abi::xen::{StartInfo, VcpuInfo, XEN_LEGACY_MAX_VCPUS};
use xen_core::domain::elf::GuestImage;
use zerocopy::IntoBytes;

#[derive(Debug, Clone)]
pub struct BuildConfig {
    pub memory_mib: u64,
    pub maxmem_mib: u64,
    pub vcpus: u32,
    pub kernel: Vec<u8>,
    pub ramdisk: Option<Vec<u8>>,
    pub cmdline: String,
    pub handle: [u8; 16],
}

/// What the toolstack needs to know about a built domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Built {
    pub domid: u16,
    pub nr_pages: u64,
    pub store_mfn: u64,
    pub store_port: u32,
    pub console_mfn: u64,
    pub console_port: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The ELF image or its Xen notes.
    #[error("kernel: {0}")]
    Kernel(String),
    /// Finding or unpacking the kernel in a bzImage or compressed file.
    #[error("kernel: {0}")]
    Unpack(#[from] kernel_image::KernelError),
    #[error("{0}")]
    Layout(#[source] layout::LayoutError),
    #[error("{0}")]
    Xen(#[from] xc::Error),
    #[error("mapping guest memory: {0}")]
    Map(#[source] std::io::Error),
}

/// The kernel as an ELF image: as it is, or unpacked from a bzImage (`/boot/vmlinuz-*`)
/// or a gzip/xz/zstd file.
pub fn elf_kernel(image: &[u8]) -> Result<Cow<'_, [u8]>, BuildError> {
    let k = kernel_image::locate(image)?;
    if k.format == kernel_image::Format::Elf && k.container == kernel_image::Container::Raw {
        return Ok(Cow::Borrowed(image));
    }
    let mut elf = vec![0u8; k.unpacked_len];
    let mut scratch = vec![0u8; kernel_image::scratch_len(&k)];
    let n = kernel_image::unpack(&k, &mut elf, &mut scratch)?;
    elf.truncate(n);
    Ok(Cow::Owned(elf))
}

/// `start_info` for a domU.
pub fn start_info(l: &DomuLayout, b: &Built, shared_info_mfn: u64, mod_len: u64, cmdline: &str) -> StartInfo {
    let mut si = StartInfo { nr_pages: l.nr_pages, ..StartInfo::default() };
    si.set_magic(b"xen-3.0-x86_64");
    si.shared_info = shared_info_mfn << 12;
    si.store_mfn = b.store_mfn;
    si.store_evtchn = b.store_port;
    si.console_mfn = b.console_mfn;
    si.console_evtchn = b.console_port;
    si.pt_base = l.va(l.pt_pfn);
    si.nr_pt_frames = l.pt.total();
    si.mfn_list = l.va(l.p2m_pfn);
    if mod_len > 0 {
        si.mod_start = l.va(l.ramdisk_pfn);
        si.mod_len = mod_len;
    }
    let c = cmdline.as_bytes();
    let n = c.len().min(si.cmd_line.len() - 1);
    si.cmd_line[..n].copy_from_slice(&c[..n]);
    si
}

/// vCPU 0 at the kernel's entry, as libxenguest starts a 64-bit PV guest.
pub fn boot_context(l: &DomuLayout, entry: u64, l4_mfn: u64) -> VcpuGuestContext {
    let mut c = VcpuGuestContext { flags: (Vgcf::IN_KERNEL | Vgcf::ONLINE).bits(), ..Default::default() };
    c.user_regs.rip = entry;
    c.user_regs.rsp = l.va(l.stack_pfn + 1);
    c.user_regs.rsi = l.va(l.start_info_pfn);
    c.user_regs.rflags = 1 << 9;
    c.user_regs.cs = FLAT_KERNEL_CS;
    c.user_regs.ss = FLAT_KERNEL_SS;
    c.kernel_ss = u64::from(FLAT_KERNEL_SS);
    c.kernel_sp = c.user_regs.rsp;
    c.ctrlreg[3] = l4_mfn << 12;
    c.debugreg[6] = 0xffff_0ff0;
    c.debugreg[7] = 0x400;
    c
}

/// Builds the domain; on failure the half-built domain is destroyed.
pub fn build(xc: &Xc, cfg: &BuildConfig) -> Result<Built, BuildError> {
    let elf = elf_kernel(&cfg.kernel)?;
    let image = GuestImage::parse(&elf).map_err(|e| BuildError::Kernel(format!("{e:?}")))?;
    let domid = xc.create_domain(cfg.handle, cfg.vcpus)?;
    match build_into(xc, cfg, &elf, &image, domid) {
        Ok(b) => Ok(b),
        Err(e) => {
            let _ = xc.destroy(domid);
            Err(e)
        }
    }
}

fn build_into(xc: &Xc, cfg: &BuildConfig, elf: &[u8], image: &GuestImage, domid: u16) -> Result<Built, BuildError> {
    let nr_pages = cfg.memory_mib << 8;
    let ramdisk_len = cfg.ramdisk.as_ref().map_or(0, |r| r.len() as u64);
    let l = domu_layout(&image.params, nr_pages, ramdisk_len).map_err(BuildError::Layout)?;
    xc.max_vcpus(domid, cfg.vcpus)?;
    // libxl adds 1 MiB of slack (LIBXL_MAXMEM_CONSTANT) to the domain's limit.
    xc.max_mem(domid, (cfg.maxmem_mib.max(cfg.memory_mib) << 10) + 1024)?;
    let p2m = xc.populate_physmap(domid, nr_pages)?;
    let info = xc.domain_info(domid)?.ok_or(BuildError::Xen(xc::Error { what: "domctl getdomaininfo", errno: 3 }))?;
    // Events stay masked on every vCPU until the guest unmasks them (libxenguest's
    // shared_info setup): an upcall before the kernel has its handlers would kill it.
    {
        let si = xc.privcmd().map_foreign(domid, &[info.shared_info_frame]).map_err(BuildError::Map)?;
        for v in 0..XEN_LEGACY_MAX_VCPUS {
            si.write(v * size_of::<VcpuInfo>() + offset_of!(VcpuInfo, evtchn_upcall_mask), &[1]);
        }
    }
    let store_port = xc.alloc_unbound(domid, 0)?;
    let console_port = xc.alloc_unbound(domid, 0)?;
    let built = Built {
        domid,
        nr_pages,
        store_mfn: p2m[l.store_pfn as usize],
        store_port,
        console_mfn: p2m[l.console_pfn as usize],
        console_port,
    };
    {
        let mapped = l.mapped_pages() as usize;
        let m = xc.privcmd().map_foreign(domid, &p2m[..mapped]).map_err(BuildError::Map)?;
        let off = |va: u64| (va - l.virt_base) as usize;
        image
            .load(
                elf,
                |va, bytes| {
                    m.copy_in(off(va), bytes);
                    Ok::<(), ()>(())
                },
                |va, n| {
                    m.zero(off(va), n as usize);
                    Ok(())
                },
            )
            .map_err(|e| BuildError::Kernel(format!("loading: {e:?}")))?;
        if let Some(rd) = &cfg.ramdisk {
            m.copy_in((l.ramdisk_pfn * PAGE) as usize, rd);
        }
        // P2M: an unsigned long per PFN; the rest of its pages stay zero (fresh memory
        // from Xen is scrubbed, but the toolstack does not rely on that).
        let p2m_bytes: Vec<u8> = p2m.iter().flat_map(|m| m.to_le_bytes()).collect();
        m.copy_in((l.p2m_pfn * PAGE) as usize, &p2m_bytes);
        for pfn in [l.start_info_pfn, l.store_pfn, l.console_pfn, l.stack_pfn] {
            m.zero((pfn * PAGE) as usize, PAGE as usize);
        }
        let si = start_info(&l, &built, info.shared_info_frame, ramdisk_len, &cfg.cmdline);
        m.copy_in((l.start_info_pfn * PAGE) as usize, si.as_bytes());
        for (i, frame) in page_tables(&l, |pfn| p2m[pfn as usize]).iter().enumerate() {
            m.copy_in(((l.pt_pfn + i as u64) * PAGE) as usize, frame.as_bytes());
        }
        // The mapping goes before the pin: Xen refuses to type a frame as a page
        // table while a writable mapping of it exists.
    }
    if let Some(hc) = image.params.virt_hypercall {
        xc.hypercall_init(domid, p2m[((hc - l.virt_base) / PAGE) as usize])?;
    }
    xc.set_memory_map(domid, nr_pages * PAGE)?;
    let l4 = p2m[l.pt_pfn as usize];
    xc.pin_l4(domid, l4)?;
    xc.set_vcpu_context(domid, 0, &boot_context(&l, image.params.virt_entry, l4))?;
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// A bzImage (boot protocol 2.15, 4 setup sectors) around `payload`.
    fn bzimage(payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 5 * 512 + 64];
        v[0x1f1] = 4;
        v[0x202..0x206].copy_from_slice(b"HdrS");
        v[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        v[0x248..0x24c].copy_from_slice(&64u32.to_le_bytes());
        v[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn kernels_as_users_have_them() {
        let elf: Vec<u8> = b"\x7fELF\x02\x01\x01\0".iter().copied().chain((0..50_000u32).map(|i| (i * 7 % 251) as u8)).collect();
        assert!(matches!(elf_kernel(&elf).unwrap(), Cow::Borrowed(_)));
        assert_eq!(&*elf_kernel(&gzip(&elf)).unwrap(), &elf[..]);
        assert_eq!(&*elf_kernel(&bzimage(&gzip(&elf))).unwrap(), &elf[..]);
        let e = elf_kernel(&bzimage(b"BZh91AY&SY")).unwrap_err();
        assert_eq!(e.to_string(), "kernel: bzip2-compressed kernel is not supported (gzip, xz and zstd are)");
        let e = elf_kernel(&gzip(b"#!/bin/sh\n")).unwrap_err();
        assert_eq!(e.to_string(), "kernel: gzip kernel payload does not unpack to an ELF image");
        assert!(std::error::Error::source(&BuildError::Map(std::io::Error::other("x"))).is_some());
    }
}
