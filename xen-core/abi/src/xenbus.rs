//! `io/xenbus.h`: the state machine each end of a split device publishes in its
//! xenstore `state` node.

/// `enum xenbus_state` / `XenbusState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum XenbusState {
    /// `XenbusStateUnknown`
    Unknown = 0,
    /// `XenbusStateInitialising`
    Initialising = 1,
    /// `XenbusStateInitWait`: backend waiting for frontend information.
    InitWait = 2,
    /// `XenbusStateInitialised`: frontend published its details.
    Initialised = 3,
    /// `XenbusStateConnected`
    Connected = 4,
    /// `XenbusStateClosing`
    Closing = 5,
    /// `XenbusStateClosed`
    Closed = 6,
    /// `XenbusStateReconfiguring`
    Reconfiguring = 7,
    /// `XenbusStateReconfigured`
    Reconfigured = 8,
}

impl XenbusState {
    /// All states in numeric order.
    pub const ALL: [XenbusState; 9] = [
        Self::Unknown,
        Self::Initialising,
        Self::InitWait,
        Self::Initialised,
        Self::Connected,
        Self::Closing,
        Self::Closed,
        Self::Reconfiguring,
        Self::Reconfigured,
    ];

    /// The numeric value written to xenstore.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// Xen's C name without the `XenbusState` prefix, e.g. `"InitWait"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Unknown => "Unknown",
            Self::Initialising => "Initialising",
            Self::InitWait => "InitWait",
            Self::Initialised => "Initialised",
            Self::Connected => "Connected",
            Self::Closing => "Closing",
            Self::Closed => "Closed",
            Self::Reconfiguring => "Reconfiguring",
            Self::Reconfigured => "Reconfigured",
        }
    }

    /// Parses the decimal text of a xenstore `state` node (surrounding ASCII
    /// whitespace and a trailing NUL are tolerated).
    pub fn parse(text: &[u8]) -> Option<Self> {
        let text = match text.split_last() {
            Some((0, rest)) => rest,
            _ => text,
        };
        let s = core::str::from_utf8(text).ok()?.trim();
        let v: u32 = s.parse().ok()?;
        Self::try_from(v).ok()
    }

    /// The single ASCII digit xenstore stores for this state.
    pub const fn as_ascii(self) -> u8 {
        b'0' + self as u8
    }
}

impl TryFrom<u32> for XenbusState {
    type Error = u32;
    fn try_from(v: u32) -> Result<Self, u32> {
        Self::ALL.get(v as usize).copied().ok_or(v)
    }
}

impl From<XenbusState> for u32 {
    fn from(s: XenbusState) -> u32 {
        s as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        for (i, s) in XenbusState::ALL.iter().enumerate() {
            assert_eq!(XenbusState::try_from(i as u32), Ok(*s));
            assert_eq!(u32::from(*s), i as u32);
        }
        assert_eq!(XenbusState::try_from(9), Err(9));
        assert_eq!(XenbusState::parse(b"4"), Some(XenbusState::Connected));
        assert_eq!(XenbusState::parse(b"6\0"), Some(XenbusState::Closed));
        assert_eq!(XenbusState::parse(b" 2\n"), Some(XenbusState::InitWait));
        assert_eq!(XenbusState::parse(b"x"), None);
        assert_eq!(XenbusState::parse(b"10"), None);
        assert_eq!(XenbusState::Initialised.as_ascii(), b'3');
        assert_eq!(XenbusState::InitWait.name(), "InitWait");
    }
}
