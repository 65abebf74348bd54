//! pv-guest's CPUID dump (`CPUID llllllll.ssssssss eax ebx ecx edx` lines from its
//! `cpuid_dump` self-test) and the comparison of ours with real Xen's: every leaf and
//! sub-leaf must be identical, register by register. Nothing is masked: two boots of real
//! Xen on the same QEMU CPU give the same dump (the time leaf's TSC frequency is 0 for the
//! hardware domain, whose TSC is never emulated), so every difference is ours.

use std::fmt;

/// One dump line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    pub leaf: u32,
    pub sub: u32,
    pub regs: [u32; 4],
}

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}.{:08x}", self.leaf, self.sub)
    }
}

const REG_NAMES: [&str; 4] = ["eax", "ebx", "ecx", "edx"];

/// Finds a `CPUID ...` line anywhere in a log line (Xen prefixes guest output).
pub fn parse_line(line: &str) -> Option<Leaf> {
    let at = line.find("CPUID ")?;
    let mut w = line[at + 6..].split_ascii_whitespace();
    let (leaf, sub) = w.next()?.split_once('.')?;
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    let (leaf, sub) = (hex(leaf)?, hex(sub)?);
    let mut regs = [0; 4];
    for r in &mut regs {
        *r = hex(w.next()?)?;
    }
    w.next().is_none().then_some(Leaf { leaf, sub, regs })
}

pub fn parse_log(log: &str) -> Vec<Leaf> {
    log.lines().filter_map(parse_line).collect()
}

/// Every difference between our dump and Xen's, naming the leaf and register.
pub fn compare(ours: &[Leaf], xen: &[Leaf]) -> Vec<String> {
    let mut diff = Vec::new();
    if xen.is_empty() {
        diff.push("real Xen's report has no CPUID lines".to_string());
    }
    for x in xen {
        let Some(o) = ours.iter().find(|o| (o.leaf, o.sub) == (x.leaf, x.sub)) else {
            diff.push(format!("{x}: only on Xen"));
            continue;
        };
        for (i, name) in REG_NAMES.iter().enumerate() {
            if o.regs[i] != x.regs[i] {
                diff.push(format!("{x} {name}: ours {:08x}, Xen {:08x}", o.regs[i], x.regs[i]));
            }
        }
    }
    for o in ours.iter().filter(|o| !xen.iter().any(|x| (x.leaf, x.sub) == (o.leaf, o.sub))) {
        diff.push(format!("{o}: only on ours"));
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixed_lines() {
        let l = parse_line("(d0) CPUID 00000007.00000000 00000000 009c4fbb 00400004 00000000").unwrap();
        assert_eq!(l, Leaf { leaf: 7, sub: 0, regs: [0, 0x9c4fbb, 0x400004, 0] });
        assert_eq!(parse_line("CPUID 00000007.00000000 0 1 2"), None);
        assert_eq!(parse_line("CPUID 00000007.00000000 0 1 2 3 4"), None);
        assert_eq!(parse_line("TEST cpuid_dump PASS"), None);
    }

    #[test]
    fn names_leaf_and_register() {
        let xen = [Leaf { leaf: 1, sub: 0, regs: [1, 2, 3, 4] }, Leaf { leaf: 2, sub: 0, regs: [0; 4] }];
        let ours = [Leaf { leaf: 1, sub: 0, regs: [1, 2, 7, 4] }, Leaf { leaf: 3, sub: 0, regs: [0; 4] }];
        assert_eq!(
            compare(&ours, &xen),
            [
                "00000001.00000000 ecx: ours 00000007, Xen 00000003",
                "00000002.00000000: only on Xen",
                "00000003.00000000: only on ours"
            ]
        );
        assert!(compare(&xen, &xen).is_empty());
        assert!(!compare(&[], &[]).is_empty(), "an empty reference is no pass");
    }
}
