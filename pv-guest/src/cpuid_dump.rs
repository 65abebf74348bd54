//! The CPUID a PV kernel sees, one `CPUID llllllll.ssssssss eax ebx ecx edx` line per
//! leaf and sub-leaf: every leaf and sub-leaf a Linux 6.1 guest reads (basic leaves up to
//! the maximum leaf 0 reports, with the sub-leaves of the enumerated ones; extended leaves
//! up to 0x80000000's maximum; Xen's leaves 0x40000000..=0x40000005 and the next base
//! Linux probes, 0x40000100). xtask compares the dump line for line between real Xen and
//! xen-core, so the choice of queries must not depend on anything but the answers.

/// Highest basic leaf queried, whatever leaf 0 claims (Intel's list ends at 0x24 today).
pub const BASIC_CAP: u32 = 0x3f;
/// Highest extended leaf queried, whatever 0x80000000 claims (AMD's list ends at 0x26).
pub const EXTD_CAP: u32 = 0x8000_003f;

/// How many sub-leaves of a leaf are dumped (1 for leaves without sub-leaves). Fixed
/// counts, a little past what hardware enumerates, so a hypervisor that answers a sub-leaf
/// it should leave zero shows up too.
pub fn subleaves(leaf: u32, leaf0: [u32; 4]) -> u32 {
    match leaf {
        // Deterministic cache parameters (Xen keeps 6), AMD's cache topology.
        0x4 | 0x8000_001d => 8,
        // Structured features: sub-leaf 0's EAX is the last valid sub-leaf.
        0x7 => leaf0[0].clamp(2, 7) + 2,
        // Extended topology (Xen keeps 2), V2 extended topology.
        0xb | 0x1f => 6,
        // Processor extended state: one sub-leaf per XCR0/XSS bit.
        0xd => 64,
        // RDT monitoring and allocation, SGX, PT, SoC vendor, TLB, PCONFIG-style leaves.
        0xf | 0x10 | 0x12 | 0x14 | 0x17 | 0x18 | 0x1d | 0x1e | 0x20 | 0x23 => 4,
        // AMD PQoS extensions, AMD heterogeneous topology.
        0x8000_0020 | 0x8000_0026 => 4,
        _ => 1,
    }
}

/// Every (leaf, sub-leaf) to dump, asking `read` for the maxima, in dump order.
pub fn for_each_query(read: &mut impl FnMut(u32, u32) -> [u32; 4], mut emit: impl FnMut(u32, u32)) {
    let max_basic = read(0, 0)[0].min(BASIC_CAP);
    for leaf in 0..=max_basic {
        let leaf0 = read(leaf, 0);
        for sub in 0..subleaves(leaf, leaf0) {
            emit(leaf, sub);
        }
    }
    for leaf in (0x4000_0000..=0x4000_0005).chain([0x4000_0100]) {
        emit(leaf, 0);
    }
    let max_extd = read(0x8000_0000, 0)[0];
    let max_extd = if max_extd & 0xffff_0000 == 0x8000_0000 { max_extd.min(EXTD_CAP) } else { 0x8000_0000 };
    for leaf in 0x8000_0000..=max_extd {
        let leaf0 = read(leaf, 0);
        for sub in 0..subleaves(leaf, leaf0) {
            emit(leaf, sub);
        }
    }
}

/// One dump line (without the console's prefix).
pub fn line(leaf: u32, sub: u32, r: [u32; 4]) -> impl core::fmt::Display {
    struct Line(u32, u32, [u32; 4]);
    impl core::fmt::Display for Line {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            let [a, b, c, d] = self.2;
            write!(f, "CPUID {:08x}.{:08x} {a:08x} {b:08x} {c:08x} {d:08x}", self.0, self.1)
        }
    }
    Line(leaf, sub, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queries(max_basic: u32, max_extd: u32, leaf7_max: u32) -> Vec<(u32, u32)> {
        let mut read = |leaf: u32, _sub: u32| match leaf {
            0 => [max_basic, 0, 0, 0],
            7 => [leaf7_max, 0, 0, 0],
            0x8000_0000 => [max_extd, 0, 0, 0],
            _ => [0; 4],
        };
        let mut v = Vec::new();
        for_each_query(&mut read, |l, s| v.push((l, s)));
        v
    }

    #[test]
    fn enumerates_leaves_and_subleaves() {
        let q = queries(0xd, 0x8000_0008, 0);
        assert_eq!(q.iter().filter(|(l, _)| *l == 0xd).count(), 64);
        assert_eq!(q.iter().filter(|(l, _)| *l == 0x7).count(), 4);
        assert_eq!(q.iter().filter(|(l, _)| *l == 0x4).count(), 8);
        assert!(q.contains(&(0xc, 0)) && !q.contains(&(0xe, 0)));
        assert!(q.contains(&(0x8000_0008, 0)) && !q.contains(&(0x8000_0009, 0)));
        assert!(q.contains(&(0x4000_0005, 0)) && q.contains(&(0x4000_0100, 0)));
        // Dump order: basic, Xen's, extended.
        assert_eq!(q[0], (0, 0));
        assert_eq!(*q.last().unwrap(), (0x8000_0008, 0));
    }

    #[test]
    fn maxima_are_capped() {
        let q = queries(0xffff_ffff, 0x8fff_ffff, 0xffff_ffff);
        assert!(q.iter().all(|&(l, _)| l <= BASIC_CAP || (0x4000_0000..=EXTD_CAP).contains(&l)));
        assert_eq!(q.iter().filter(|(l, _)| *l == 0x7).count(), 9);
        // A garbage extended maximum (not 0x8000xxxx) dumps only 0x80000000.
        let q = queries(1, 0x1234, 0);
        assert_eq!(q.iter().filter(|(l, _)| *l >= 0x8000_0000).count(), 1);
    }

    #[test]
    fn line_format() {
        let s = format!("{}", line(7, 1, [1, 0xabcdef, 0, 0xffff_ffff]));
        assert_eq!(s, "CPUID 00000007.00000001 00000001 00abcdef 00000000 ffffffff");
    }
}
