//! `blkbench PATH [--label L] [--seq-mib N] [--rand-reads N]`: read throughput of a disk
//! or image file, for `cargo xtask bench blk` — sequential 1 MiB reads (MB/s) and random
//! 4 KiB reads (IOPS, one at a time). Runs the same in a Linux domU (on `/dev/xvda`) and
//! natively in dom0 (on the image file). Reads bypass the page cache (`O_DIRECT`) where
//! the file system allows it; the `direct` figure says whether it did.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::time::Instant;

const SEQ_BLOCK: usize = 1 << 20;
const RAND_BLOCK: usize = 4096;
/// O_DIRECT wants buffers aligned to the logical block size; a page covers every disk.
const ALIGN: usize = 4096;

struct Args {
    path: String,
    label: String,
    seq_mib: u64,
    rand_reads: u64,
}

fn parse() -> Result<Args, String> {
    let mut a = Args { path: String::new(), label: "blk".into(), seq_mib: 64, rand_reads: 2000 };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut val = |k: &str| it.next().ok_or_else(|| format!("{k} needs a value"));
        match x.as_str() {
            "--label" => a.label = val("--label")?,
            "--seq-mib" => a.seq_mib = val("--seq-mib")?.parse().map_err(|_| "--seq-mib: not a number".to_string())?,
            "--rand-reads" => a.rand_reads = val("--rand-reads")?.parse().map_err(|_| "--rand-reads: not a number".to_string())?,
            p if !p.starts_with('-') && a.path.is_empty() => a.path = p.into(),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if a.path.is_empty() {
        return Err("usage: blkbench PATH [--label L] [--seq-mib N] [--rand-reads N]".into());
    }
    Ok(a)
}

/// An `ALIGN`-aligned window of `len` bytes inside a heap buffer (no unsafe allocation).
fn aligned(buf: &mut [u8], len: usize) -> &mut [u8] {
    let skip = (ALIGN - (buf.as_ptr() as usize % ALIGN)) % ALIGN;
    &mut buf[skip..skip + len]
}

fn open(path: &str) -> std::io::Result<(File, bool)> {
    match OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path) {
        Ok(f) => Ok((f, true)),
        // tmpfs/ramfs (dom0's initramfs) have no O_DIRECT.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok((File::open(path)?, false)),
        Err(e) => Err(e),
    }
}

fn run(a: &Args) -> Result<(), String> {
    let (mut f, direct) = open(&a.path).map_err(|e| format!("{}: {e}", a.path))?;
    let size = f.seek(SeekFrom::End(0)).map_err(|e| format!("{}: {e}", a.path))?;
    let mut heap = vec![0u8; SEQ_BLOCK + ALIGN];
    let buf = aligned(&mut heap, SEQ_BLOCK);
    let seq_bytes = (a.seq_mib << 20).min(size / SEQ_BLOCK as u64 * SEQ_BLOCK as u64);
    if seq_bytes == 0 {
        return Err(format!("{}: smaller than 1 MiB", a.path));
    }
    let t = Instant::now();
    let mut at = 0;
    while at < seq_bytes {
        f.read_exact_at(buf, at).map_err(|e| format!("{}: read at {at}: {e}", a.path))?;
        at += SEQ_BLOCK as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    println!("BENCH {} seq_read_1m_MBps {:.1}", a.label, seq_bytes as f64 / secs / 1e6);
    let blocks = size / RAND_BLOCK as u64;
    let small = &mut buf[..RAND_BLOCK];
    // xorshift64 with a fixed seed: every run reads the same offsets.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let t = Instant::now();
    for _ in 0..a.rand_reads {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = (x % blocks) * RAND_BLOCK as u64;
        f.read_exact_at(small, off).map_err(|e| format!("{}: read at {off}: {e}", a.path))?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!("BENCH {} rand_read_4k_iops {:.0}", a.label, a.rand_reads as f64 / secs);
    println!("BENCH {} direct {}", a.label, u8::from(direct));
    Ok(())
}

fn main() {
    let r = parse().and_then(|a| run(&a));
    if let Err(e) = r {
        eprintln!("blkbench: {e}");
        std::process::exit(1);
    }
}
