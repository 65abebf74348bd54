//! Linux kernels as users have them: an ELF `vmlinux`, an x86 `bzImage` (`/boot/vmlinuz-*`)
//! or a raw gzip/xz/zstd file holding an ELF. [`locate`] finds the kernel in an image and
//! how big it is unpacked; [`unpack`] decompresses it into a buffer the caller sized from
//! [`Kernel::unpacked_len`], with an XZ dictionary of [`scratch_len`] bytes. The rules are
//! libxenguest's `xc_dom_bzimageloader.c` and Xen's `arch/x86/bzimage.c`:
//!
//! - a bzImage carries `HdrS` at 0x202 and boot protocol 2.08 or newer; its payload
//!   starts `payload_offset` (0x248) bytes into the protected-mode code, which begins at
//!   `(setup_sects + 1) * 512` (`setup_sects` 0 means 4), and is `payload_length` (0x24c)
//!   bytes long;
//! - every compressed kernel payload ends with its uncompressed size as a little-endian
//!   `u32` (Linux's `size_append` in `scripts/Makefile.lib`; for gzip it is the member's
//!   own `ISIZE`), which is what Xen reads too;
//! - what comes out must be an ELF image.
//!
//! Images come from users and guests, so every header field is bounds-checked and every
//! failure is a [`KernelError`], never a panic; output that would not fit `out` is an
//! error, not a truncation. Only maintained decoders are used: `miniz_oxide` (deflate),
//! `xz4rust` (XZ with the x86 BCJ filter; CRC32, CRC64 or no check: SHA-256 would pull in
//! `std`), `ruzstd` (Zstandard, needs `alloc`). bzip2,
//! LZMA, LZO and LZ4 kernels are recognised and refused with a clear error: there is no
//! maintained `no_std` decoder for them that writes into a caller's buffer.
//!
//! Memory: gzip and XZ allocate nothing (`xz4rust`'s decoder state is about 32 KiB on the
//! stack; its dictionary is `scratch`). Zstandard allocates its window from the heap
//! ([`heap_len`] says how much) on top of `out`.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use core::fmt;

/// Largest unpacked kernel accepted (libxenguest's default `XC_DOM_DECOMPRESS_MAX`, 1 GiB).
pub const MAX_UNPACKED: usize = 1 << 30;
/// Largest XZ dictionary [`scratch_len`] asks for: `xz -9`'s 64 MiB (Linux's `xz_wrap.sh`
/// uses 32 MiB). A stream that declares more is refused by [`unpack`].
pub const MAX_XZ_DICT: usize = 64 << 20;
/// Largest Zstandard window accepted: `zstd -22 --ultra` (Linux's `cmd_zstd22`) on a pipe
/// uses 2^27 bytes.
pub const MAX_ZSTD_WINDOW: usize = 128 << 20;

/// What the kernel (or the payload of a bzImage) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An uncompressed ELF image.
    Elf,
    /// gzip (RFC 1952), Linux's `CONFIG_KERNEL_GZIP`.
    Gzip,
    /// XZ, Linux's `CONFIG_KERNEL_XZ` (Debian's kernels).
    Xz,
    /// Zstandard, Linux's `CONFIG_KERNEL_ZSTD`.
    Zstd,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Elf => "ELF",
            Format::Gzip => "gzip",
            Format::Xz => "xz",
            Format::Zstd => "zstd",
        })
    }
}

/// Where the payload was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// The image is the payload itself (a `vmlinux` or a compressed file).
    Raw,
    /// An x86 bzImage with this boot protocol version (`0x020f` is 2.15).
    BzImage {
        /// `hdr.version` at 0x206.
        protocol: u16,
    },
}

/// A kernel found by [`locate`].
#[derive(Debug, Clone, Copy)]
pub struct Kernel<'a> {
    /// The payload's format.
    pub format: Format,
    /// Whether it came in a bzImage.
    pub container: Container,
    /// The payload: the ELF image, or the compressed stream (with Linux's size trailer
    /// when it has one).
    pub payload: &'a [u8],
    /// Bytes [`unpack`] produces: the ELF's length, or the size the compressed payload
    /// declares (checked exactly when unpacking).
    pub unpacked_len: usize,
}

/// Why an image is not a kernel we can load. Messages are one line.
#[derive(Debug)]
#[non_exhaustive]
pub enum KernelError {
    /// Not an ELF, bzImage or known compressed file.
    UnknownFormat,
    /// A bzImage older than boot protocol 2.08 (no payload fields).
    BootProtocolTooOld {
        /// `hdr.version`.
        protocol: u16,
    },
    /// The bzImage's payload fields point outside the image.
    PayloadOutOfBounds {
        /// Payload start in the image (saturated on overflow).
        start: u64,
        /// `payload_length`.
        len: u32,
        /// Image length.
        image_len: usize,
    },
    /// The bzImage payload is none of the formats we know.
    UnknownPayload,
    /// A compression Linux supports but this crate does not.
    UnsupportedCompression(&'static str),
    /// The compressed payload is too short to hold its size trailer or header.
    Truncated(Format),
    /// The unpacked size is 0 or above [`MAX_UNPACKED`].
    BadUnpackedLen(u64),
    /// A raw XZ or Zstandard file states its size neither in its own headers nor in a
    /// size trailer.
    UnknownUnpackedLen(Format),
    /// `out` is smaller than the kernel's unpacked size.
    OutputTooSmall {
        /// What the image needs.
        needed: usize,
        /// What the caller gave.
        have: usize,
    },
    /// The decompressed data does not fit where its header said it would.
    OutputOverrun(Format),
    /// `scratch` is smaller than [`scratch_len`].
    ScratchTooSmall {
        /// What the stream needs.
        needed: usize,
        /// What the caller gave.
        have: usize,
    },
    /// A malformed gzip member.
    Gzip(&'static str),
    /// The XZ decoder refused the stream.
    Xz(xz4rust::XzError),
    /// The Zstandard decoder refused the stream.
    Zstd(ruzstd::decoding::errors::FrameDecoderError),
    /// A Zstandard frame other than a kernel's (malformed header, window too big).
    ZstdFrame(&'static str),
    /// The decompressed size differs from the declared one.
    LengthMismatch {
        /// The payload's format.
        format: Format,
        /// Declared.
        declared: usize,
        /// Produced.
        got: usize,
    },
    /// What was unpacked is not an ELF image.
    NotElf(Format),
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::UnknownFormat => f.write_str(
                "not a kernel image: neither ELF, x86 bzImage, nor a gzip/xz/zstd file",
            ),
            KernelError::BootProtocolTooOld { protocol } => write!(
                f,
                "bzImage boot protocol {}.{:02} is too old: 2.08 or newer is required",
                protocol >> 8,
                protocol & 0xff
            ),
            KernelError::PayloadOutOfBounds { start, len, image_len } => write!(
                f,
                "bzImage payload at {start:#x} ({len} bytes) lies outside the {image_len}-byte image"
            ),
            KernelError::UnknownPayload => {
                f.write_str("bzImage payload is neither ELF nor gzip/xz/zstd")
            }
            KernelError::UnsupportedCompression(what) => write!(
                f,
                "{what}-compressed kernel is not supported (gzip, xz and zstd are)"
            ),
            KernelError::Truncated(format) => write!(f, "{format} kernel payload is truncated"),
            KernelError::BadUnpackedLen(len) => write!(
                f,
                "declared unpacked kernel size {len} is not within 1..={MAX_UNPACKED} bytes"
            ),
            KernelError::UnknownUnpackedLen(format) => write!(
                f,
                "{format} kernel states no uncompressed size (no size trailer or header field)"
            ),
            KernelError::OutputTooSmall { needed, have } => write!(
                f,
                "kernel needs {needed} bytes unpacked, the buffer has {have}"
            ),
            KernelError::OutputOverrun(format) => write!(
                f,
                "{format} kernel decompresses to more than its declared size"
            ),
            KernelError::ScratchTooSmall { needed, have } => write!(
                f,
                "xz kernel needs a {needed}-byte dictionary, the scratch buffer has {have}"
            ),
            KernelError::Gzip(what) => write!(f, "gzip kernel: {what}"),
            KernelError::Xz(e) => write!(f, "xz kernel: {e}"),
            KernelError::Zstd(e) => write!(f, "zstd kernel: {e}"),
            KernelError::ZstdFrame(what) => write!(f, "zstd kernel: {what}"),
            KernelError::LengthMismatch { format, declared, got } => write!(
                f,
                "{format} kernel unpacked to {got} bytes, its size trailer says {declared}"
            ),
            KernelError::NotElf(format) => {
                write!(f, "{format} kernel payload does not unpack to an ELF image")
            }
        }
    }
}

const ELF_MAGIC: &[u8] = b"\x7fELF";
const GZIP_MAGIC: &[u8] = b"\x1f\x8b";
const XZ_MAGIC: &[u8] = b"\xfd7zXZ\x00";
const XZ_FOOTER_MAGIC: &[u8] = b"YZ";
const ZSTD_MAGIC: &[u8] = b"\x28\xb5\x2f\xfd";

/// What the first bytes say.
enum Sniffed {
    Known(Format),
    Unsupported(&'static str),
    Unknown,
}

fn sniff(data: &[u8]) -> Sniffed {
    if data.starts_with(ELF_MAGIC) {
        Sniffed::Known(Format::Elf)
    } else if data.starts_with(GZIP_MAGIC) {
        Sniffed::Known(Format::Gzip)
    } else if data.starts_with(XZ_MAGIC) {
        Sniffed::Known(Format::Xz)
    } else if data.starts_with(ZSTD_MAGIC) {
        Sniffed::Known(Format::Zstd)
    } else if data.starts_with(b"BZh") {
        Sniffed::Unsupported("bzip2")
    } else if data.starts_with(b"\x5d\x00\x00") {
        Sniffed::Unsupported("lzma")
    } else if data.starts_with(b"\x89LZO") {
        Sniffed::Unsupported("lzo")
    } else if data.starts_with(b"\x02\x21\x4c\x18") {
        Sniffed::Unsupported("lz4")
    } else {
        Sniffed::Unknown
    }
}

fn le16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        data.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn le32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        data.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The little-endian `u32` at the end of a compressed payload.
fn size_trailer(payload: &[u8]) -> Option<u32> {
    le32(payload, payload.len().checked_sub(4)?)
}

fn checked_len(len: u64) -> Result<usize, KernelError> {
    match usize::try_from(len) {
        Ok(n) if n > 0 && n <= MAX_UNPACKED => Ok(n),
        _ => Err(KernelError::BadUnpackedLen(len)),
    }
}

// bzImage setup header offsets (Documentation/arch/x86/boot.rst).
const HDR_SETUP_SECTS: usize = 0x1f1;
const HDR_MAGIC: usize = 0x202;
const HDR_VERSION: usize = 0x206;
const HDR_PAYLOAD_OFFSET: usize = 0x248;
const HDR_PAYLOAD_LENGTH: usize = 0x24c;
const MIN_PROTOCOL: u16 = 0x0208;

/// Finds the kernel in `image`: an ELF as it is, the payload of an x86 bzImage, or a raw
/// gzip/xz/zstd file; and how big it is unpacked.
pub fn locate(image: &[u8]) -> Result<Kernel<'_>, KernelError> {
    match sniff(image) {
        Sniffed::Known(format) => raw(image, format),
        Sniffed::Unsupported(what) => Err(KernelError::UnsupportedCompression(what)),
        Sniffed::Unknown => bzimage(image),
    }
}

fn raw(image: &[u8], format: Format) -> Result<Kernel<'_>, KernelError> {
    let unpacked = match format {
        Format::Elf => image.len() as u64,
        // ISIZE, the member's last field.
        Format::Gzip => u64::from(size_trailer(image).ok_or(KernelError::Truncated(format))?),
        Format::Xz => xz_index_len(image)
            .or_else(|| {
                // `xz` output followed by Linux's size trailer (a bzImage payload saved alone).
                let inner = image.get(..image.len().checked_sub(4)?)?;
                inner
                    .ends_with(XZ_FOOTER_MAGIC)
                    .then(|| size_trailer(image))
                    .flatten()
                    .map(u64::from)
            })
            .ok_or(KernelError::UnknownUnpackedLen(format))?,
        Format::Zstd => match zstd_header(image)?.content_size {
            Some(n) => n,
            None => u64::from(size_trailer(image).ok_or(KernelError::Truncated(format))?),
        },
    };
    Ok(Kernel {
        format,
        container: Container::Raw,
        payload: image,
        unpacked_len: checked_len(unpacked)?,
    })
}

fn bzimage(image: &[u8]) -> Result<Kernel<'_>, KernelError> {
    if image.get(HDR_MAGIC..HDR_MAGIC + 4) != Some(b"HdrS") {
        return Err(KernelError::UnknownFormat);
    }
    let protocol = le16(image, HDR_VERSION).ok_or(KernelError::UnknownFormat)?;
    if protocol < MIN_PROTOCOL {
        return Err(KernelError::BootProtocolTooOld { protocol });
    }
    let setup_sects = match image.get(HDR_SETUP_SECTS) {
        Some(0) => 4,
        Some(&n) => u64::from(n),
        None => return Err(KernelError::UnknownFormat),
    };
    let (Some(offset), Some(len)) = (
        le32(image, HDR_PAYLOAD_OFFSET),
        le32(image, HDR_PAYLOAD_LENGTH),
    ) else {
        return Err(KernelError::UnknownFormat);
    };
    // All in u64: (255 + 1) * 512 + 2^32 + 2^32 cannot overflow it.
    let start = (setup_sects + 1) * 512 + u64::from(offset);
    let end = start + u64::from(len);
    let out_of_bounds = KernelError::PayloadOutOfBounds {
        start,
        len,
        image_len: image.len(),
    };
    let (Ok(start_us), Ok(end_us)) = (usize::try_from(start), usize::try_from(end)) else {
        return Err(out_of_bounds);
    };
    let payload = image.get(start_us..end_us).ok_or(out_of_bounds)?;
    let container = Container::BzImage { protocol };
    match sniff(payload) {
        Sniffed::Known(Format::Elf) => Ok(Kernel {
            format: Format::Elf,
            container,
            payload,
            unpacked_len: checked_len(payload.len() as u64)?,
        }),
        Sniffed::Known(format) => {
            let declared = size_trailer(payload).ok_or(KernelError::Truncated(format))?;
            Ok(Kernel {
                format,
                container,
                payload,
                unpacked_len: checked_len(declared.into())?,
            })
        }
        Sniffed::Unsupported(what) => Err(KernelError::UnsupportedCompression(what)),
        Sniffed::Unknown => Err(KernelError::UnknownPayload),
    }
}

/// How big [`unpack`]'s `scratch` must be: the dictionary size an XZ stream's LZMA2
/// filter declares (capped at [`MAX_XZ_DICT`]; Linux uses 32 MiB), 0 for the others.
/// A stream whose header can't be read gets 0 and fails in [`unpack`].
pub fn scratch_len(k: &Kernel) -> usize {
    match k.format {
        Format::Xz => xz_dict_len(k.payload).map_or(0, |n| n.min(MAX_XZ_DICT as u64) as usize),
        _ => 0,
    }
}

/// How much heap [`unpack`] allocates besides `out` and `scratch`: the Zstandard window
/// (which `ruzstd` reserves up front, at most [`MAX_ZSTD_WINDOW`]); 0 for the others.
pub fn heap_len(k: &Kernel) -> usize {
    match k.format {
        Format::Zstd => zstd_header(k.payload)
            .ok()
            .and_then(|h| h.window)
            .map_or(0, |w| w.min(MAX_ZSTD_WINDOW as u64) as usize),
        _ => 0,
    }
}

/// Unpacks `k` into `out` (at least [`Kernel::unpacked_len`] bytes), using `scratch`
/// ([`scratch_len`] bytes) as the XZ dictionary. Returns the number of bytes written,
/// which is exactly `unpacked_len`; the result starts with an ELF header.
pub fn unpack(k: &Kernel, out: &mut [u8], scratch: &mut [u8]) -> Result<usize, KernelError> {
    if out.len() < k.unpacked_len {
        return Err(KernelError::OutputTooSmall {
            needed: k.unpacked_len,
            have: out.len(),
        });
    }
    // Never write past the declared size, whatever the stream says.
    let out = &mut out[..k.unpacked_len];
    let got = match k.format {
        Format::Elf => {
            out.copy_from_slice(
                k.payload
                    .get(..k.unpacked_len)
                    .ok_or(KernelError::Truncated(Format::Elf))?,
            );
            k.unpacked_len
        }
        Format::Gzip => gunzip(k.payload, out)?,
        Format::Xz => unxz(k.payload, out, scratch)?,
        Format::Zstd => unzstd(k.payload, out)?,
    };
    if got != k.unpacked_len {
        return Err(KernelError::LengthMismatch {
            format: k.format,
            declared: k.unpacked_len,
            got,
        });
    }
    if !out.starts_with(ELF_MAGIC) {
        return Err(KernelError::NotElf(k.format));
    }
    Ok(got)
}

// ---- gzip (RFC 1952) ----

const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;
const FRESERVED: u8 = 0xe0;

/// Length of the member header at the start of `data`.
fn gzip_header_len(data: &[u8]) -> Result<usize, KernelError> {
    let fixed = data
        .get(..10)
        .ok_or(KernelError::Gzip("header is truncated"))?;
    if fixed[2] != 8 {
        return Err(KernelError::Gzip("compression method is not deflate"));
    }
    let flags = fixed[3];
    if flags & FRESERVED != 0 {
        return Err(KernelError::Gzip("reserved header flags are set"));
    }
    let mut at = 10usize;
    if flags & FEXTRA != 0 {
        let xlen = le16(data, at).ok_or(KernelError::Gzip("header is truncated"))?;
        at += 2 + usize::from(xlen);
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let rest = data
                .get(at..)
                .ok_or(KernelError::Gzip("header is truncated"))?;
            let nul = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or(KernelError::Gzip("header is truncated"))?;
            at += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        let stored = le16(data, at).ok_or(KernelError::Gzip("header is truncated"))?;
        let crc = crc32fast::hash(&data[..at]);
        if stored != crc as u16 {
            return Err(KernelError::Gzip("header CRC does not match"));
        }
        at += 2;
    }
    if at > data.len() {
        return Err(KernelError::Gzip("header is truncated"));
    }
    Ok(at)
}

fn gunzip(data: &[u8], out: &mut [u8]) -> Result<usize, KernelError> {
    use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
    use miniz_oxide::inflate::TINFLStatus;

    let body = &data[gzip_header_len(data)?..];
    let mut inflater = DecompressorOxide::new();
    let (status, consumed, written) = decompress(
        &mut inflater,
        body,
        out,
        0,
        inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    );
    match status {
        TINFLStatus::Done => {}
        TINFLStatus::HasMoreOutput => return Err(KernelError::OutputOverrun(Format::Gzip)),
        TINFLStatus::FailedCannotMakeProgress | TINFLStatus::NeedsMoreInput => {
            return Err(KernelError::Gzip("deflate stream is truncated"))
        }
        _ => return Err(KernelError::Gzip("deflate stream is corrupt")),
    }
    let tail = body.get(consumed..).unwrap_or_default();
    let (Some(crc), Some(isize)) = (le32(tail, 0), le32(tail, 4)) else {
        return Err(KernelError::Gzip("member trailer is truncated"));
    };
    if crc != crc32fast::hash(&out[..written]) {
        return Err(KernelError::Gzip("data CRC does not match"));
    }
    if isize != written as u32 {
        return Err(KernelError::Gzip("ISIZE does not match the data"));
    }
    Ok(written)
}

// ---- XZ ----

/// Reads a multibyte integer (xz-file-format 1.4: 7 bits a byte, at most 9 bytes).
fn vli(data: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..9 {
        let byte = *data.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            // No superfluous zero continuation (xz's rule).
            return (i == 0 || byte != 0).then_some(value);
        }
    }
    None
}

/// The dictionary size the first block's LZMA2 filter declares.
fn xz_dict_len(data: &[u8]) -> Option<u64> {
    const STREAM_HEADER: usize = 12;
    let size_byte = *data.get(STREAM_HEADER)?;
    if size_byte == 0 {
        return None; // index straight away: no blocks
    }
    let header = data.get(STREAM_HEADER..STREAM_HEADER + (usize::from(size_byte) + 1) * 4)?;
    let flags = header[1];
    let mut at = 2;
    if flags & 0x40 != 0 {
        vli(header, &mut at)?;
    }
    if flags & 0x80 != 0 {
        vli(header, &mut at)?;
    }
    for _ in 0..=(flags & 3) {
        let id = vli(header, &mut at)?;
        let props_len = usize::try_from(vli(header, &mut at)?).ok()?;
        let props = header.get(at..at.checked_add(props_len)?)?;
        at += props_len;
        if id == 0x21 {
            let bits = *props.first()?;
            if bits > 40 {
                return None;
            }
            return Some(if bits == 40 {
                u64::from(u32::MAX)
            } else {
                (2 | u64::from(bits & 1)) << (bits / 2 + 11)
            });
        }
    }
    None
}

/// The uncompressed size from the stream's index (a file as the `xz` command writes it:
/// one stream, footer at the very end).
fn xz_index_len(data: &[u8]) -> Option<u64> {
    let footer = data.get(data.len().checked_sub(12)?..)?;
    if &footer[10..12] != XZ_FOOTER_MAGIC {
        return None;
    }
    let backward = (u64::from(le32(footer, 4)?) + 1) * 4;
    let index_start = (data.len() - 12).checked_sub(usize::try_from(backward).ok()?)?;
    let index = &data[index_start..data.len() - 12];
    if index.first() != Some(&0) {
        return None;
    }
    let mut at = 1;
    let records = vli(index, &mut at)?;
    let mut total = 0u64;
    for _ in 0..records {
        vli(index, &mut at)?; // unpadded size
        total = total.checked_add(vli(index, &mut at)?)?;
    }
    Some(total)
}

fn unxz(data: &[u8], out: &mut [u8], scratch: &mut [u8]) -> Result<usize, KernelError> {
    use xz4rust::{XzDecoder, XzError, XzNextBlockResult};

    let mut decoder = XzDecoder::with_fixed_size_dict(scratch);
    let (mut read, mut written) = (0usize, 0usize);
    loop {
        let input = data.get(read..).unwrap_or_default();
        let output = out.get_mut(written..).unwrap_or_default();
        let step = match decoder.decode(input, output) {
            Ok(step) => step,
            Err(XzError::DictionaryTooLarge(needed)) => {
                return Err(KernelError::ScratchTooSmall {
                    needed: usize::try_from(needed).unwrap_or(usize::MAX),
                    have: scratch_capacity(data),
                })
            }
            Err(e) => return Err(KernelError::Xz(e)),
        };
        read += step.input_consumed();
        written += step.output_produced();
        match step {
            XzNextBlockResult::EndOfStream(..) => return Ok(written),
            XzNextBlockResult::NeedMoreData(..)
                if written == out.len() && !step.made_progress() =>
            {
                return Err(KernelError::OutputOverrun(Format::Xz))
            }
            XzNextBlockResult::NeedMoreData(..) if !step.made_progress() => {
                return Err(KernelError::Truncated(Format::Xz))
            }
            XzNextBlockResult::NeedMoreData(..) => {}
        }
    }
}

/// For the error message only: what the caller should have passed.
fn scratch_capacity(data: &[u8]) -> usize {
    xz_dict_len(data).map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

// ---- Zstandard ----

struct ZstdHeader {
    content_size: Option<u64>,
    window: Option<u64>,
}

/// The frame header fields we need (RFC 8878 3.1.1.1).
fn zstd_header(data: &[u8]) -> Result<ZstdHeader, KernelError> {
    let truncated = || KernelError::Truncated(Format::Zstd);
    let descriptor = *data.get(4).ok_or_else(truncated)?;
    let fcs_flag = descriptor >> 6;
    let single_segment = descriptor & 0x20 != 0;
    if descriptor & 0x08 != 0 {
        return Err(KernelError::ZstdFrame("reserved frame header bit is set"));
    }
    let mut at = 5;
    let mut window = None;
    if !single_segment {
        let w = *data.get(at).ok_or_else(truncated)?;
        let exponent = u32::from(w >> 3);
        let base = 1u64 << (10 + exponent);
        window = Some(base + (base / 8) * u64::from(w & 7));
        at += 1;
    }
    at += [0, 1, 2, 4][usize::from(descriptor & 3)];
    let fcs_len = match (fcs_flag, single_segment) {
        (0, false) => 0,
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let field = data.get(at..at + fcs_len).ok_or_else(truncated)?;
    let mut bytes = [0u8; 8];
    bytes[..fcs_len].copy_from_slice(field);
    let mut content_size = (fcs_len > 0).then(|| u64::from_le_bytes(bytes));
    if fcs_len == 2 {
        content_size = content_size.map(|n| n + 256);
    }
    if single_segment {
        window = content_size;
    }
    Ok(ZstdHeader {
        content_size,
        window,
    })
}

fn unzstd(data: &[u8], out: &mut [u8]) -> Result<usize, KernelError> {
    use ruzstd::decoding::errors::FrameDecoderError;
    use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
    use ruzstd::io::Read;

    if zstd_header(data)?.window.unwrap_or(0) > MAX_ZSTD_WINDOW as u64 {
        return Err(KernelError::ZstdFrame("window is larger than 128 MiB"));
    }
    let mut decoder = FrameDecoder::new();
    decoder.set_max_window_size(MAX_ZSTD_WINDOW as u64);
    let mut input = data;
    decoder.init(&mut input).map_err(KernelError::Zstd)?;
    let mut written = 0usize;
    loop {
        let finished = decoder
            .decode_blocks(&mut input, BlockDecodingStrategy::UptoBytes(1 << 20))
            .map_err(KernelError::Zstd)?;
        let ready = decoder.can_collect();
        let room = out.len() - written;
        if ready > room {
            return Err(KernelError::OutputOverrun(Format::Zstd));
        }
        let got = decoder
            .read(&mut out[written..written + ready])
            .map_err(|e| KernelError::Zstd(FrameDecoderError::FailedToDrainDecodebuffer(e)))?;
        written += got;
        if finished {
            if decoder.can_collect() != 0 {
                return Err(KernelError::OutputOverrun(Format::Zstd));
            }
            if let (Some(stored), Some(computed)) = (
                decoder.get_checksum_from_data(),
                decoder.get_calculated_checksum(),
            ) {
                if stored != computed {
                    return Err(KernelError::ZstdFrame("content checksum does not match"));
                }
            }
            return Ok(written);
        }
    }
}

impl core::error::Error for KernelError {}
