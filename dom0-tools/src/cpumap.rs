//! CPU lists as xl reads and prints them: `parse_cpurange` (`cpus=` in xl.cfg, `xl
//! vcpu-pin`) and `print_bitmap` (`xl vcpu-list`'s affinity column), over masks of up
//! to 64 CPUs in the `xenctl_bitmap` byte order.

/// A set of physical CPUs (bit n: CPU n).
pub type Mask = u64;

/// How many CPUs a mask holds.
pub const MAX_CPUS: u32 = 64;

/// xl's `parse_cpurange`: comma-separated items, each `all`, `N` or `N-M`, optionally
/// `nodes:`/`node:` (this host is one NUMA node 0, holding every CPU below `nr_cpus`)
/// and optionally negated with `^` (removed from what the items before it added).
/// Starts from the empty set. `^all` is refused as xl refuses it.
pub fn parse_cpurange(s: &str, nr_cpus: u32) -> Result<Mask, String> {
    let every = if nr_cpus >= MAX_CPUS { u64::MAX } else { (1u64 << nr_cpus) - 1 };
    let mut m: Mask = 0;
    if s.trim().is_empty() {
        return Err("empty cpu list".into());
    }
    for item in s.split(',') {
        let item = item.trim();
        let (not, rest) = match item.strip_prefix('^') {
            Some(r) => (true, r),
            None => (false, item),
        };
        let (nodes, rest) = match rest.strip_prefix("nodes:").or_else(|| rest.strip_prefix("node:")) {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let bits = if rest == "all" {
            if not {
                return Err("can't combine \"^\" and \"all\"".into());
            }
            every
        } else {
            let (a, b) = parse_range(rest).ok_or_else(|| format!("invalid pcpu range: {item}"))?;
            if nodes {
                // Node 0 is every CPU; other nodes have none.
                if a == 0 {
                    every
                } else {
                    return Err(format!("no NUMA node {a} on this host (node 0 only)"));
                }
            } else {
                (a..=b.min(MAX_CPUS - 1)).fold(0u64, |m, c| m | (1 << c))
            }
        };
        if not {
            m &= !bits;
        } else {
            m |= bits;
        }
    }
    Ok(m)
}

/// `N` or `N-M` with N <= M (xl's `parse_range`).
fn parse_range(s: &str) -> Option<(u32, u32)> {
    let num = |t: &str| if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()) { t.parse::<u32>().ok() } else { None };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            (a <= b).then_some((a, b))
        }
        None => num(s).map(|a| (a, a)),
    }
}

/// xl's `print_bitmap` over the first `nr_cpus` bits: `all` when every one is set,
/// `none` when none is, otherwise ranges like `0-1,3`.
pub fn format(m: Mask, nr_cpus: u32) -> String {
    let n = nr_cpus.min(MAX_CPUS);
    let set = |c: u32| m & (1 << c) != 0;
    if n > 0 && (0..n).all(set) {
        return "all".into();
    }
    let mut out = Vec::new();
    let mut c = 0;
    while c < n {
        if !set(c) {
            c += 1;
            continue;
        }
        let start = c;
        while c + 1 < n && set(c + 1) {
            c += 1;
        }
        out.push(if c > start { format!("{start}-{c}") } else { start.to_string() });
        c += 1;
    }
    if out.is_empty() {
        "none".into()
    } else {
        out.join(",")
    }
}

/// The mask as `xenctl_bitmap` bytes for `nr_cpus` CPUs.
pub fn to_bytes(m: Mask, nr_cpus: u32) -> Vec<u8> {
    (0..nr_cpus.min(MAX_CPUS).div_ceil(8)).map(|i| (m >> (8 * i)) as u8).collect()
}

/// `xenctl_bitmap` bytes as a mask (bits past 64 dropped).
pub fn from_bytes(b: &[u8]) -> Mask {
    b.iter().take(8).enumerate().fold(0, |m, (i, &x)| m | (u64::from(x) << (8 * i)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn xl_forms() {
        assert_eq!(parse_cpurange("1", 2), Ok(0b10));
        assert_eq!(parse_cpurange("0-1", 2), Ok(0b11));
        assert_eq!(parse_cpurange("all", 2), Ok(0b11));
        assert_eq!(parse_cpurange("0-3,^1", 4), Ok(0b1101));
        assert_eq!(parse_cpurange("2, 5-6", 8), Ok(0b110_0100));
        assert_eq!(parse_cpurange("nodes:0", 2), Ok(0b11));
        assert_eq!(parse_cpurange("all,^node:0", 2), Ok(0));
        assert_eq!(parse_cpurange("^1", 2), Ok(0));
        for bad in ["", "x", "1-", "-1", "3-1", "^all", "1,,2", "nodes:1", "0x1", "1 2"] {
            assert!(parse_cpurange(bad, 2).is_err(), "{bad}");
        }
    }

    #[test]
    fn printed_as_xl() {
        assert_eq!(format(0b11, 2), "all");
        assert_eq!(format(u64::MAX, 2), "all");
        assert_eq!(format(0b10, 2), "1");
        assert_eq!(format(0b01, 2), "0");
        assert_eq!(format(0, 2), "none");
        assert_eq!(format(0b1101, 5), "0,2-3");
        assert_eq!(format(0b1110, 4), "1-3");
    }

    proptest! {
        /// What is printed parses back to the same CPUs.
        #[test]
        fn print_parse_round_trip(m in any::<u64>(), n in 1u32..=64) {
            let every = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            let m = m & every;
            prop_assume!(m != 0);
            prop_assert_eq!(parse_cpurange(&format(m, n), n), Ok(m));
            prop_assert_eq!(from_bytes(&to_bytes(m, n)), m);
        }

        /// Any text: an answer or an error, never a panic.
        #[test]
        fn parse_never_panics(s in "[0-9a-z,^:\\- ]{0,24}", n in 0u32..=80) {
            let _ = parse_cpurange(&s, n);
        }
    }
}
