//! A xenbus device's keys as a driver sees them: reading the peer's directory and
//! writing its own, over whatever store connection the driver has (the `no_std` client
//! in a PV kernel, the dom0 socket, a test's map). Front- and back-ends of every device
//! type use these.

/// Reads a key of the peer's directory.
pub trait KeyRead {
    /// Copies the value of `key` into `buf` and returns its full length (which may exceed
    /// `buf.len()`: the value is then too long to be valid), or `None` if it is absent.
    fn read_key(&mut self, key: &str, buf: &mut [u8]) -> Option<usize>;
}

impl<F: FnMut(&str, &mut [u8]) -> Option<usize>> KeyRead for F {
    fn read_key(&mut self, key: &str, buf: &mut [u8]) -> Option<usize> {
        self(key, buf)
    }
}

/// Writes a key of our own directory.
pub trait KeyWrite {
    /// Sets `key` to `value`.
    fn write_key(&mut self, key: &str, value: &str);
}

impl<F: FnMut(&str, &str)> KeyWrite for F {
    fn write_key(&mut self, key: &str, value: &str) {
        self(key, value)
    }
}

/// A number in a key's value, as Linux's `xenbus_scanf("%u")` reads it: surrounding
/// ASCII whitespace and a trailing NUL are ignored, the rest must be decimal digits.
pub fn parse_number(v: &[u8]) -> Option<u64> {
    let v = v.strip_suffix(b"\0").unwrap_or(v).trim_ascii();
    crate::parse_decimal(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_xenbus_reads_them() {
        assert_eq!(parse_number(b"42"), Some(42));
        assert_eq!(parse_number(b" 7\n"), Some(7));
        assert_eq!(parse_number(b"8\0"), Some(8));
        assert_eq!(parse_number(b""), None);
        assert_eq!(parse_number(b"-1"), None);
        assert_eq!(parse_number(b"1x"), None);
        assert_eq!(parse_number(b"18446744073709551616"), None);
    }

    #[test]
    fn closures_are_key_readers_and_writers() {
        let mut got = None;
        let mut w = |k: &str, v: &str| got = Some((k.len(), v.len()));
        w.write_key("ab", "cde");
        assert_eq!(got, Some((2, 3)));
        let mut r = |k: &str, buf: &mut [u8]| (k == "x").then(|| {
            buf[0] = b'1';
            1
        });
        let mut b = [0u8; 4];
        assert_eq!(r.read_key("x", &mut b), Some(1));
        assert_eq!(r.read_key("y", &mut b), None);
    }
}
