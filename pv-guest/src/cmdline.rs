//! The kernel command line (start_info `cmd_line`): `tests=all` or `tests=a,b,c`, plus
//! options for later roles. Unknown words are ignored, as Linux does.

/// Which self-tests to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestSelection<'a> {
    All,
    /// Comma-separated names.
    Only(&'a str),
    None,
}

impl TestSelection<'_> {
    pub fn includes(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(list) => list.split(',').any(|n| n == name),
            Self::None => false,
        }
    }
}

/// The command line bytes up to the first NUL, as text (invalid UTF-8 ends it early).
pub fn from_bytes(raw: &[u8]) -> &str {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    match core::str::from_utf8(&raw[..end]) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&raw[..e.valid_up_to()]).unwrap_or(""),
    }
}

pub fn tests(cmdline: &str) -> TestSelection<'_> {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix("tests="))
        .next_back()
        .map_or(TestSelection::None, |v| if v == "all" { TestSelection::All } else { TestSelection::Only(v) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection() {
        assert_eq!(tests("console=hvc0 tests=all"), TestSelection::All);
        assert!(tests("tests=console,timer").includes("timer"));
        assert!(!tests("tests=console,timer").includes("time"));
        assert_eq!(tests("quiet"), TestSelection::None);
        assert_eq!(tests("tests=a tests=all"), TestSelection::All);
    }

    #[test]
    fn raw_command_lines() {
        assert_eq!(from_bytes(b"tests=all\0garbage"), "tests=all");
        assert_eq!(from_bytes(b"abc"), "abc");
        assert_eq!(from_bytes(b"ok\xffbad\0"), "ok");
    }
}
