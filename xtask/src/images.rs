//! Bootable images in `target/images/`: `xen-core` (a flat multiboot image for QEMU's
//! `-kernel`), `xen-core.elf` (symbols, for gdb) and `pv-guest` (an ELF with Xen notes).

use crate::cmd;
use crate::error::{Context, Error, Result};
use std::path::{Path, PathBuf};

pub const BARE_TARGET: &str = "x86_64-unknown-none";

/// The bare-metal images and their code-generation flags: they run at the addresses they
/// are linked at (no runtime relocation); the hypervisor lives in Xen's slot 261, outside
/// both 2 GiB windows of the small and kernel code models, so it uses the large one.
pub const BARE_IMAGES: [(&str, &str); 2] = [
    ("xen-core", "-C relocation-model=static -C code-model=large"),
    ("pv-guest", "-C relocation-model=static"),
];

#[derive(Debug)]
pub struct Images {
    pub xen_core: PathBuf,
    pub pv_guest: PathBuf,
}

pub fn images_dir(root: &Path) -> PathBuf {
    root.join("target/images")
}

/// Builds one bare-metal binary in its own target dir (its flags differ from the host's).
pub fn build_bare(root: &Path, package: &str, rustflags: &str) -> Result<PathBuf> {
    let target_dir = root.join("target/bare").join(package);
    let mut c = cmd::cargo(root);
    c.args(["build", "--release", "--package", package, "--bin", package, "--target", BARE_TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("CARGO_TARGET_X86_64_UNKNOWN_NONE_RUSTFLAGS", rustflags);
    cmd::run(&mut c)?;
    Ok(target_dir.join(BARE_TARGET).join("release").join(package))
}

pub fn build_all(root: &Path) -> Result<Images> {
    let dir = images_dir(root);
    std::fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;

    let hv_elf = build_bare(root, BARE_IMAGES[0].0, BARE_IMAGES[0].1)?;
    let elf = std::fs::read(&hv_elf).context(|| format!("reading {}", hv_elf.display()))?;
    let flat = flat_image(&elf).context(|| format!("converting {}", hv_elf.display()))?;
    check_multiboot_header(&flat)?;
    let xen_core = dir.join("xen-core");
    std::fs::write(&xen_core, &flat)?;
    std::fs::copy(&hv_elf, dir.join("xen-core.elf"))?;

    let guest_elf = build_bare(root, BARE_IMAGES[1].0, BARE_IMAGES[1].1)?;
    let pv_guest = dir.join("pv-guest");
    std::fs::copy(&guest_elf, &pv_guest).context(|| format!("copying {}", guest_elf.display()))?;

    eprintln!("xtask: images in {}: xen-core ({} bytes), pv-guest ({} bytes)", dir.display(), flat.len(), std::fs::metadata(&pv_guest)?.len());
    Ok(Images { xen_core, pv_guest })
}

fn u16_at(b: &[u8], off: usize) -> Result<u16> {
    b.get(off..off + 2).map(|s| u16::from_le_bytes([s[0], s[1]])).ok_or_else(|| Error::new("truncated ELF"))
}

fn u32_at(b: &[u8], off: usize) -> Result<u32> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
        .ok_or_else(|| Error::new("truncated ELF"))
}

fn u64_at(b: &[u8], off: usize) -> Result<u64> {
    b.get(off..off + 8)
        .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
        .ok_or_else(|| Error::new("truncated ELF"))
}

/// Lays the PT_LOAD segments of a static ELF64 out by physical address, from the lowest
/// one: what `objcopy -O binary` does, without needing binutils.
pub fn flat_image(elf: &[u8]) -> Result<Vec<u8>> {
    if elf.get(..4) != Some(b"\x7fELF") || elf.get(4) != Some(&2) {
        return Err(Error::new("not an ELF64 file"));
    }
    let phoff = usize::try_from(u64_at(elf, 0x20)?).map_err(|_| Error::new("bad e_phoff"))?;
    let phentsize = usize::from(u16_at(elf, 0x36)?);
    let phnum = usize::from(u16_at(elf, 0x38)?);
    let mut segs = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(elf, ph)? != 1 {
            continue; // not PT_LOAD
        }
        let (off, paddr, filesz) = (u64_at(elf, ph + 8)?, u64_at(elf, ph + 24)?, u64_at(elf, ph + 32)?);
        if filesz > 0 {
            segs.push((paddr, off, filesz));
        }
    }
    let base = segs.iter().map(|s| s.0).min().ok_or_else(|| Error::new("no loadable segment"))?;
    let end = segs.iter().map(|s| s.0 + s.2).max().expect("non-empty");
    let mut out = vec![0u8; usize::try_from(end - base).map_err(|_| Error::new("image too large"))?];
    for (paddr, off, filesz) in segs {
        let (dst, src, n) = ((paddr - base) as usize, off as usize, filesz as usize);
        let data = elf.get(src..src + n).ok_or_else(|| Error::new("segment outside the file"))?;
        out[dst..dst + n].copy_from_slice(data);
    }
    Ok(out)
}

/// QEMU only loads a multiboot image whose header lies in its first 8 KiB.
fn check_multiboot_header(image: &[u8]) -> Result<()> {
    let found = image[..image.len().min(8192)]
        .chunks_exact(4)
        .any(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")) == 0x1BAD_B002);
    if found {
        Ok(())
    } else {
        Err(Error::new("xen-core image has no multiboot header in its first 8 KiB"))
    }
}

#[cfg(test)]
mod tests {
    use super::flat_image;

    /// A minimal ELF64 with two PT_LOAD segments (paddr 0x1000 and 0x1010) and one note.
    fn elf_with_segments() -> Vec<u8> {
        let mut e = vec![0u8; 0x200];
        e[..4].copy_from_slice(b"\x7fELF");
        e[4] = 2;
        e[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        e[0x38..0x3a].copy_from_slice(&3u16.to_le_bytes());
        let ph = |e: &mut Vec<u8>, i: usize, kind: u32, off: u64, paddr: u64, filesz: u64| {
            let p = 0x40 + i * 56;
            e[p..p + 4].copy_from_slice(&kind.to_le_bytes());
            e[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
            e[p + 24..p + 32].copy_from_slice(&paddr.to_le_bytes());
            e[p + 32..p + 40].copy_from_slice(&filesz.to_le_bytes());
        };
        ph(&mut e, 0, 1, 0x100, 0x1000, 4);
        ph(&mut e, 1, 4, 0x180, 0, 8); // PT_NOTE: ignored
        ph(&mut e, 2, 1, 0x110, 0x1010, 2);
        e[0x100..0x104].copy_from_slice(b"abcd");
        e[0x110..0x112].copy_from_slice(b"xy");
        e
    }

    #[test]
    fn lays_segments_out_by_physical_address() {
        let img = flat_image(&elf_with_segments()).unwrap();
        assert_eq!(img.len(), 0x12);
        assert_eq!(&img[..4], b"abcd");
        assert!(img[4..0x10].iter().all(|&b| b == 0));
        assert_eq!(&img[0x10..], b"xy");
    }

    #[test]
    fn rejects_non_elf_and_truncated_files() {
        assert!(flat_image(b"MZ\x90\x00").is_err());
        let mut e = elf_with_segments();
        e.truncate(0x60);
        assert!(flat_image(&e).is_err());
    }
}
