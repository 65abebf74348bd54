//! Result lines and the tally every tier ends with.
//!
//! Guests and the hypervisor print one line per test, `TEST <name> PASS` or
//! `TEST <name> FAIL <why>`, then `N passed, N failed`. xtask's own checks go into the
//! same tally.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestLine {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// Finds `TEST name PASS|FAIL detail` anywhere in a line (Xen prefixes guest output
/// with `(d0) ` or `(XEN) `).
pub fn parse_test_line(line: &str) -> Option<TestLine> {
    let at = line.find("TEST ")?;
    let mut words = line[at + 5..].splitn(3, ' ');
    let name = words.next()?.to_string();
    let passed = match words.next()?.trim_end() {
        "PASS" => true,
        "FAIL" => false,
        _ => return None,
    };
    let detail = words.next().unwrap_or("").trim().to_string();
    Some(TestLine { name, passed, detail })
}

/// Finds a closing `N passed, N failed` line.
pub fn parse_summary(line: &str) -> Option<(u32, u32)> {
    let at = line.find(" passed, ")?;
    let passed = line[..at].rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
    let rest = &line[at + " passed, ".len()..];
    let failed = rest.split(' ').next()?.parse().ok()?;
    rest[rest.find(' ')?..].trim_start().starts_with("failed").then_some((passed, failed))
}

#[derive(Debug, Default)]
pub struct Tally {
    pub passed: u32,
    pub failed: u32,
    pub failures: Vec<String>,
}

impl Tally {
    pub fn record(&mut self, name: &str, ok: bool, detail: &str) {
        if ok {
            self.passed += 1;
            println!("  ok    {name}");
        } else {
            self.failed += 1;
            println!("  FAIL  {name}: {detail}");
            self.failures.push(format!("{name}: {detail}"));
        }
    }

    pub fn absorb(&mut self, other: Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.failures.extend(other.failures);
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_lines_with_prefixes() {
        assert_eq!(
            parse_test_line("(d0) TEST console PASS"),
            Some(TestLine { name: "console".into(), passed: true, detail: String::new() })
        );
        assert_eq!(
            parse_test_line("(XEN) TEST trap_ud FAIL no #UD bounce"),
            Some(TestLine { name: "trap_ud".into(), passed: false, detail: "no #UD bounce".into() })
        );
        assert_eq!(parse_test_line("TEST x MAYBE"), None);
        // A group that cannot run says so; it counts neither way.
        assert_eq!(parse_test_line("(d0) TEST smp SKIP the domain has 1 vCPU(s)"), None);
        assert_eq!(parse_test_line("nothing here"), None);
    }

    #[test]
    fn summaries() {
        assert_eq!(parse_summary("(d0) 12 passed, 0 failed"), Some((12, 0)));
        assert_eq!(parse_summary("3 passed, 2 failed"), Some((3, 2)));
        assert_eq!(parse_summary("3 passed, x failed"), None);
        assert_eq!(parse_summary("3 passed, 2 skipped"), None);
    }
}
