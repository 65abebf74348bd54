//! Kernels packed the way Linux and users pack them, produced here with the reference
//! encoders (liblzma through `xz2`, libzstd through `zstd`, `flate2`), then located and
//! unpacked; hostile variants must fail with the right error and never panic.

use std::io::Write;

use kernel_image::{
    heap_len, locate, scratch_len, unpack, Container, Format, Kernel, KernelError, MAX_UNPACKED,
};
use proptest::prelude::*;

/// An ELF-looking image: the magic, then text with x86 `call` opcodes (so the BCJ filter
/// has something to convert), repeated phrases and noise from a fixed-seed generator.
fn fake_elf(len: usize) -> Vec<u8> {
    let mut v = b"\x7fELF\x02\x01\x01\0".to_vec();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    while v.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        match seed % 4 {
            0 => v.extend_from_slice(&[0xe8, seed as u8, (seed >> 8) as u8, 0, 0]),
            1 => v.extend_from_slice(b"xen_hypercall_page start_info "),
            2 => v.push((seed >> 16) as u8),
            _ => v.extend_from_slice(&(seed as u32).to_le_bytes()),
        }
    }
    v.truncate(len);
    v
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A gzip member with every optional header field (FEXTRA, FNAME, FCOMMENT, FHCRC).
fn gzip_all_fields(data: &[u8]) -> Vec<u8> {
    let mut m = vec![0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10, 1, 2, 3, 4, 2, 3];
    m.extend_from_slice(&5u16.to_le_bytes());
    m.extend_from_slice(b"AB\x02\0z");
    m.extend_from_slice(b"vmlinux\0");
    m.extend_from_slice(b"a comment\0");
    let hcrc = crc32(&m) as u16;
    m.extend_from_slice(&hcrc.to_le_bytes());
    let mut e = flate2::write::DeflateEncoder::new(m, flate2::Compression::default());
    e.write_all(data).unwrap();
    let mut m = e.finish().unwrap();
    m.extend_from_slice(&crc32(data).to_le_bytes());
    m.extend_from_slice(&(data.len() as u32).to_le_bytes());
    m
}

fn crc32(data: &[u8]) -> u32 {
    let mut h = flate2::Crc::new();
    h.update(data);
    h.sum()
}

/// As Linux's `scripts/xz_wrap.sh` for x86: the x86 BCJ filter, LZMA2, a CRC32 check
/// (with a smaller dictionary than Linux's 32 MiB, to keep the test light).
fn xz(data: &[u8], check: xz2::stream::Check, dict: u32) -> Vec<u8> {
    let mut opts = xz2::stream::LzmaOptions::new_preset(6).unwrap();
    opts.dict_size(dict);
    let mut filters = xz2::stream::Filters::new();
    filters.x86();
    filters.lzma2(&opts);
    let stream = xz2::stream::Stream::new_stream_encoder(&filters, check).unwrap();
    let mut e = xz2::write::XzEncoder::new_stream(Vec::new(), stream);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `zstd` with the content size in the frame header (as the command writes a file).
fn zstd_sized(data: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(data, 19).unwrap()
}

/// `zstd` on a pipe (Linux's `cmd_zstd22`): no content size, a checksum.
fn zstd_streamed(data: &[u8]) -> Vec<u8> {
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap();
    e.include_checksum(true).unwrap();
    e.include_contentsize(false).unwrap();
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Linux's `size_append`.
fn with_trailer(mut stream: Vec<u8>, len: usize) -> Vec<u8> {
    stream.extend_from_slice(&(len as u32).to_le_bytes());
    stream
}

/// A bzImage around `payload`: boot sector and setup (`setup_sects`), then protected-mode
/// code with the payload `gap` bytes in, then a few bytes after it.
fn bzimage(payload: &[u8], setup_sects: u8, gap: usize, protocol: u16) -> Vec<u8> {
    let sects = if setup_sects == 0 {
        4
    } else {
        usize::from(setup_sects)
    };
    let pm = (sects + 1) * 512;
    let mut v = vec![0u8; pm + gap];
    v[0x1f1] = setup_sects;
    v[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
    v[0x202..0x206].copy_from_slice(b"HdrS");
    v[0x206..0x208].copy_from_slice(&protocol.to_le_bytes());
    v[0x248..0x24c].copy_from_slice(&(gap as u32).to_le_bytes());
    v[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    for (i, b) in v[pm..].iter_mut().enumerate() {
        *b = 0x90 ^ i as u8; // decompressor code
    }
    v.extend_from_slice(payload);
    v.extend_from_slice(b"\0\0\0\0padding");
    v
}

fn unpack_all(k: &Kernel) -> Result<Vec<u8>, KernelError> {
    let mut out = vec![0u8; k.unpacked_len];
    let mut scratch = vec![0u8; scratch_len(k)];
    let n = unpack(k, &mut out, &mut scratch)?;
    out.truncate(n);
    Ok(out)
}

fn roundtrip(image: &[u8], format: Format, container: Container, elf: &[u8]) {
    let k = locate(image).unwrap();
    assert_eq!((k.format, k.container), (format, container));
    assert_eq!(k.unpacked_len, elf.len());
    assert!(
        unpack_all(&k).unwrap() == elf,
        "{format} unpacked to other bytes"
    );
}

#[test]
fn raw_elf_is_taken_as_it_is() {
    let elf = fake_elf(10_000);
    roundtrip(&elf, Format::Elf, Container::Raw, &elf);
    assert_eq!(scratch_len(&locate(&elf).unwrap()), 0);
}

#[test]
fn raw_gzip_plain_and_with_every_header_field() {
    let elf = fake_elf(300_000);
    roundtrip(&gzip(&elf), Format::Gzip, Container::Raw, &elf);
    roundtrip(&gzip_all_fields(&elf), Format::Gzip, Container::Raw, &elf);
}

#[test]
fn gzip_header_crc_and_data_crc_are_checked() {
    let elf = fake_elf(50_000);
    let mut bad_hcrc = gzip_all_fields(&elf);
    bad_hcrc[10 + 2 + 5 + 8 + 10] ^= 1;
    let k = locate(&bad_hcrc).unwrap();
    assert!(matches!(
        unpack_all(&k),
        Err(KernelError::Gzip("header CRC does not match"))
    ));

    let mut bad_crc = gzip(&elf);
    let at = bad_crc.len() - 8;
    bad_crc[at] ^= 1;
    let k = locate(&bad_crc).unwrap();
    assert!(matches!(
        unpack_all(&k),
        Err(KernelError::Gzip("data CRC does not match"))
    ));
}

#[test]
fn raw_xz_with_each_check_type() {
    let elf = fake_elf(400_000);
    for check in [
        xz2::stream::Check::Crc32,
        xz2::stream::Check::Crc64,
        xz2::stream::Check::None,
    ] {
        let packed = xz(&elf, check, 1 << 20);
        let k = locate(&packed).unwrap();
        assert_eq!(
            scratch_len(&k),
            1 << 20,
            "dictionary size from the LZMA2 properties"
        );
        roundtrip(&packed, Format::Xz, Container::Raw, &elf);
    }
}

#[test]
fn raw_xz_with_linux_size_trailer() {
    let elf = fake_elf(100_000);
    let packed = with_trailer(xz(&elf, xz2::stream::Check::Crc32, 1 << 16), elf.len());
    roundtrip(&packed, Format::Xz, Container::Raw, &elf);
}

#[test]
fn raw_zstd_sized_and_streamed() {
    let elf = fake_elf(300_000);
    roundtrip(&zstd_sized(&elf), Format::Zstd, Container::Raw, &elf);
    roundtrip(
        &with_trailer(zstd_streamed(&elf), elf.len()),
        Format::Zstd,
        Container::Raw,
        &elf,
    );
    let image = zstd_sized(&elf);
    let k = locate(&image).unwrap();
    assert!(heap_len(&k) >= elf.len() && heap_len(&k) <= kernel_image::MAX_ZSTD_WINDOW);
}

#[test]
fn bzimage_with_each_payload() {
    let elf = fake_elf(200_000);
    let payloads = [
        (Format::Gzip, gzip(&elf)), // gzip's ISIZE is the trailer (no size_append)
        (
            Format::Xz,
            with_trailer(xz(&elf, xz2::stream::Check::Crc32, 1 << 18), elf.len()),
        ),
        (Format::Zstd, with_trailer(zstd_streamed(&elf), elf.len())),
        (Format::Elf, elf.clone()),
    ];
    for (format, payload) in payloads {
        for (sects, gap) in [(0u8, 0x4321usize), (27, 0), (1, 17)] {
            let image = bzimage(&payload, sects, gap, 0x020f);
            roundtrip(
                &image,
                format,
                Container::BzImage { protocol: 0x020f },
                &elf,
            );
            let k = locate(&image).unwrap();
            assert_eq!(
                k.payload,
                &payload[..],
                "payload bounds for setup_sects {sects}"
            );
        }
    }
}

#[test]
fn bzimage_header_rules() {
    let elf = fake_elf(20_000);
    let payload = gzip(&elf);
    assert!(matches!(
        locate(&bzimage(&payload, 4, 0, 0x0207)),
        Err(KernelError::BootProtocolTooOld { protocol: 0x0207 })
    ));
    locate(&bzimage(&payload, 4, 0, 0x0208)).unwrap();

    let mut past_end = bzimage(&payload, 4, 0, 0x020f);
    let len = payload.len() as u32 + 100;
    past_end[0x24c..0x250].copy_from_slice(&len.to_le_bytes());
    assert!(matches!(
        locate(&past_end),
        Err(KernelError::PayloadOutOfBounds { .. })
    ));

    let mut huge = bzimage(&payload, 255, 0, 0x020f);
    huge[0x248..0x250].copy_from_slice(&[0xff; 8]);
    assert!(matches!(
        locate(&huge),
        Err(KernelError::PayloadOutOfBounds { .. })
    ));

    let junk = bzimage(b"\x42\x42 not compressed at all", 4, 0, 0x020f);
    assert!(matches!(locate(&junk), Err(KernelError::UnknownPayload)));

    let bz2 = bzimage(b"BZh91AY&SY", 4, 0, 0x020f);
    assert!(matches!(
        locate(&bz2),
        Err(KernelError::UnsupportedCompression("bzip2"))
    ));
    let lzma = bzimage(b"\x5d\x00\x00\x80\x00", 4, 0, 0x020f);
    let e = locate(&lzma).unwrap_err();
    assert_eq!(
        e.to_string(),
        "lzma-compressed kernel is not supported (gzip, xz and zstd are)"
    );

    assert!(matches!(
        locate(b"MZ\0\0 a PE file"),
        Err(KernelError::UnknownFormat)
    ));
    assert!(matches!(locate(b""), Err(KernelError::UnknownFormat)));
}

#[test]
fn declared_size_must_match() {
    let elf = fake_elf(60_000);
    let stream = xz(&elf, xz2::stream::Check::Crc32, 1 << 16);
    // A trailer that claims less: the stream overruns the output.
    let small = bzimage(&with_trailer(stream.clone(), elf.len() - 1), 4, 0, 0x020f);
    let k = locate(&small).unwrap();
    assert!(matches!(
        unpack_all(&k),
        Err(KernelError::OutputOverrun(Format::Xz))
    ));
    // A trailer that claims more: short output.
    let big = bzimage(&with_trailer(stream, elf.len() + 1), 4, 0, 0x020f);
    let k = locate(&big).unwrap();
    assert!(matches!(
        unpack_all(&k),
        Err(KernelError::LengthMismatch {
            format: Format::Xz,
            declared: 60_001,
            got: 60_000
        })
    ));

    for (format, stream) in [
        (Format::Zstd, zstd_streamed(&elf)),
        (Format::Gzip, gzip(&elf)[..].to_vec()),
    ] {
        let mut payload = stream;
        if format == Format::Gzip {
            let at = payload.len() - 4;
            payload[at..].copy_from_slice(&(elf.len() as u32 - 1).to_le_bytes());
        } else {
            payload = with_trailer(payload, elf.len() - 1);
        }
        let image = bzimage(&payload, 4, 0, 0x020f);
        let k = locate(&image).unwrap();
        assert!(
            matches!(unpack_all(&k), Err(KernelError::OutputOverrun(f)) if f == format),
            "{format}"
        );
    }
}

#[test]
fn limits_and_buffers() {
    let elf = fake_elf(30_000);
    let image = gzip(&elf);
    let k = locate(&image).unwrap();
    let mut out = vec![0u8; elf.len() - 1];
    assert!(matches!(
        unpack(&k, &mut out, &mut []),
        Err(KernelError::OutputTooSmall {
            needed: 30_000,
            have: 29_999
        })
    ));

    let packed = xz(&elf, xz2::stream::Check::Crc32, 1 << 20);
    let k = locate(&packed).unwrap();
    let mut out = vec![0u8; elf.len()];
    let mut scratch = vec![0u8; (1 << 20) - 1];
    assert!(matches!(
        unpack(&k, &mut out, &mut scratch),
        Err(KernelError::ScratchTooSmall {
            needed: 1_048_576,
            ..
        })
    ));

    let zero = bzimage(&with_trailer(zstd_streamed(&elf), 0), 4, 0, 0x020f);
    assert!(matches!(locate(&zero), Err(KernelError::BadUnpackedLen(0))));
    let huge = bzimage(
        &with_trailer(zstd_streamed(&elf), MAX_UNPACKED + 1),
        4,
        0,
        0x020f,
    );
    assert!(matches!(locate(&huge), Err(KernelError::BadUnpackedLen(_))));
}

#[test]
fn result_must_be_elf() {
    let text = b"#!/bin/sh\necho not a kernel\n".repeat(100);
    let image = gzip(&text);
    let k = locate(&image).unwrap();
    assert!(matches!(
        unpack_all(&k),
        Err(KernelError::NotElf(Format::Gzip))
    ));
    let image = zstd_sized(&text);
    let k = locate(&image).unwrap();
    let e = unpack_all(&k).unwrap_err();
    assert_eq!(
        e.to_string(),
        "zstd kernel payload does not unpack to an ELF image"
    );
}

#[test]
fn truncated_streams_are_errors() {
    let elf = fake_elf(80_000);
    let images = [
        gzip(&elf),
        bzimage(
            &with_trailer(xz(&elf, xz2::stream::Check::Crc32, 1 << 16), elf.len()),
            4,
            0,
            0x20f,
        ),
        bzimage(&with_trailer(zstd_streamed(&elf), elf.len()), 4, 0, 0x20f),
    ];
    for image in images {
        let k = locate(&image).unwrap();
        for cut in [k.payload.len() / 2, k.payload.len() - 10, 20] {
            // The trailer kept, the middle of the stream gone.
            let mut short = k.payload[..cut].to_vec();
            short.extend_from_slice(&k.payload[k.payload.len() - 4..]);
            let bad = Kernel {
                payload: &short,
                ..k
            };
            assert!(unpack_all(&bad).is_err(), "{} cut at {cut}", k.format);
        }
    }
}

/// Locates and (when the sizes are sane for a test) unpacks; any result but a panic is
/// fine, and every error message is one line.
fn never_panics(image: &[u8]) {
    match locate(image) {
        Ok(k) => {
            if k.unpacked_len <= 8 << 20 && scratch_len(&k) <= 8 << 20 {
                if let Err(e) = unpack_all(&k) {
                    assert!(!e.to_string().contains('\n'));
                }
            }
        }
        Err(e) => assert!(!e.to_string().contains('\n')),
    }
}

fn valid_images() -> Vec<Vec<u8>> {
    let elf = fake_elf(40_000);
    vec![
        gzip_all_fields(&elf),
        xz(&elf, xz2::stream::Check::Crc64, 1 << 16),
        zstd_sized(&elf),
        bzimage(&gzip(&elf), 0, 100, 0x020f),
        bzimage(
            &with_trailer(xz(&elf, xz2::stream::Check::Crc32, 1 << 16), elf.len()),
            4,
            0,
            0x20f,
        ),
        bzimage(&with_trailer(zstd_streamed(&elf), elf.len()), 2, 8, 0x20c),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                                prefix in 0usize..6) {
        let magics: [&[u8]; 6] = [b"", b"\x1f\x8b\x08", b"\xfd7zXZ\0", b"\x28\xb5\x2f\xfd", b"\x7fELF", b"BZh"];
        let mut image = magics[prefix].to_vec();
        image.extend_from_slice(&bytes);
        never_panics(&image);
        // and as a bzImage payload
        never_panics(&bzimage(&image, 4, 0, 0x020f));
    }

    #[test]
    fn mutated_images_never_panic(which in 0usize..6,
                                  flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
                                  cut in proptest::option::of(any::<prop::sample::Index>())) {
        let images = valid_images_cached();
        let mut image = images[which].clone();
        for (at, x) in flips {
            let i = at.index(image.len());
            image[i] ^= x | 1;
        }
        if let Some(cut) = cut {
            image.truncate(cut.index(image.len()));
        }
        never_panics(&image);
    }
}

fn valid_images_cached() -> &'static [Vec<u8>] {
    static IMAGES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    IMAGES.get_or_init(valid_images)
}

#[test]
fn valid_images_are_valid() {
    for image in valid_images_cached() {
        let k = locate(image).unwrap();
        assert_eq!(unpack_all(&k).unwrap(), fake_elf(40_000));
    }
}

/// Debian's kernel (xtask's dom0 tier fetches it into `target/reference/`): a bzImage with
/// an XZ payload whose size trailer says how big the ELF is.
#[test]
fn debian_vmlinuz_when_given() {
    let Some(path) = std::env::var_os("XEN_RS_VMLINUZ") else {
        eprintln!("XEN_RS_VMLINUZ not set: Debian's kernel not checked");
        return;
    };
    let image = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.to_string_lossy()));
    let k = locate(&image).unwrap();
    assert!(matches!(k.container, Container::BzImage { protocol } if protocol >= 0x0208));
    let trailer = u32::from_le_bytes(k.payload[k.payload.len() - 4..].try_into().unwrap());
    assert_eq!(k.unpacked_len, trailer as usize);
    let elf = unpack_all(&k).unwrap();
    assert_eq!(elf.len(), trailer as usize);
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "a 64-bit ELF");
}
