//! Xen's hypervisor command line, so that a Xen command line works unchanged.
//!
//! The multiboot command line starts with the image name (QEMU puts the file name first),
//! then whitespace-separated `name`, `name=value` or `no-name` options. Options we act on
//! are parsed into [`BootOptions`]; options Xen knows but we do not act on are accepted;
//! anything else is reported back so the caller can warn, as Xen does.

use core::fmt;

/// A size in bytes, parsed the way Xen's `parse_size_and_unit` does: optional suffix
/// `K`, `M`, `G`, `T` or `B`; a bare number means KiB.
pub fn parse_size(s: &str) -> Result<u64, OptionError> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(OptionError::BadSize);
    }
    let n: u64 = s[..digits].parse().map_err(|_| OptionError::BadSize)?;
    let shift = match &s[digits..] {
        "" | "k" | "K" => 10,
        "b" | "B" => 0,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        _ => return Err(OptionError::BadSize),
    };
    n.checked_mul(1u64 << shift).ok_or(OptionError::BadSize)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionError {
    BadSize,
    BadNumber,
    BadValue,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadSize => "bad size",
            Self::BadNumber => "bad number",
            Self::BadValue => "bad value",
        })
    }
}

/// `dom0_mem=[min:<size>,][max:<size>,][<size>]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dom0Mem {
    pub amount: Option<u64>,
    pub min: Option<u64>,
    pub max: Option<u64>,
}

fn parse_dom0_mem(v: &str) -> Result<Dom0Mem, OptionError> {
    let mut m = Dom0Mem::default();
    for part in v.split(',') {
        if let Some(s) = part.strip_prefix("min:") {
            m.min = Some(parse_size(s)?);
        } else if let Some(s) = part.strip_prefix("max:") {
            m.max = Some(parse_size(s)?);
        } else {
            m.amount = Some(parse_size(part)?);
        }
    }
    Ok(m)
}

/// `dom0_max_vcpus=<n>` or `<min>-<max>`.
/// dom0's vCPU count as Xen computes it: one per physical CPU in use, raised to the
/// range's low end and cut to its high end (`dom0_max_vcpus=N` is exactly N), at least
/// one and at most `limit`.
pub fn dom0_vcpus(range: Option<(u32, u32)>, pcpus: u32, limit: u32) -> u32 {
    let mut n = pcpus;
    if let Some((lo, hi)) = range {
        n = n.max(lo).min(hi);
    }
    n.clamp(1, limit)
}

fn parse_vcpu_range(v: &str) -> Result<(u32, u32), OptionError> {
    let num = |s: &str| s.parse::<u32>().map_err(|_| OptionError::BadNumber);
    match v.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (num(lo)?, num(hi)?);
            if lo > hi {
                return Err(OptionError::BadValue);
            }
            Ok((lo, hi))
        }
        None => {
            let n = num(v)?;
            Ok((n, n))
        }
    }
}

/// `loglvl=` / `guest_loglvl=`: `<level>[/<rate-limited level>]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    None,
    Error,
    Warning,
    Info,
    Debug,
    All,
}

fn parse_loglvl(v: &str) -> Result<LogLevel, OptionError> {
    let first = v.split('/').next().unwrap_or("");
    Ok(match first {
        "none" => LogLevel::None,
        "error" => LogLevel::Error,
        "warning" => LogLevel::Warning,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "all" => LogLevel::All,
        _ => return Err(OptionError::BadValue),
    })
}

/// Options Xen accepts that need no action from us (console tuning, timestamps, ...).
const ACCEPTED: &[&str] = &[
    "com1", "com2", "console_timestamps", "console_to_ring", "conring_size", "noreboot",
    "reboot", "sync_console", "iommu", "smt", "ucode", "dom0", "dom0_vcpus_pin", "sched",
    "vga", "no-real-mode", "edd", "watchdog", "cpufreq", "spec-ctrl", "pv-linear-pt",
];

/// An `integer_param` value as Xen's `simple_strtoll(v, &end, 0)` reads it: decimal,
/// `0x` hex or leading-`0` octal, an optional sign; anything left over is invalid.
fn parse_int(v: &str) -> Result<i64, OptionError> {
    let (neg, digits) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let (radix, body) = if let Some(h) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        (16, h)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    let n = i64::from_str_radix(body, radix).map_err(|_| OptionError::BadNumber)?;
    Ok(if neg { -n } else { n })
}

/// The credit scheduler's boot parameters, as given (Xen checks their ranges when the
/// scheduler starts: `domain::credit::PoolParams::from_boot`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreditBoot {
    /// `sched_credit_tslice_ms=`
    pub tslice_ms: Option<i64>,
    /// `sched_ratelimit_us=`
    pub ratelimit_us: Option<i64>,
    /// `vcpu_migration_delay=` (µs)
    pub migr_delay_us: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootOptions {
    /// `console=` lists `com1`; without a console option Xen defaults to VGA, which we
    /// don't have, so output goes to COM1 regardless.
    pub console_com1: bool,
    pub dom0_mem: Dom0Mem,
    pub dom0_max_vcpus: Option<(u32, u32)>,
    /// `maxcpus=N` (Xen's): bring up at most N physical CPUs; `nosmp` is `maxcpus=1`.
    pub maxcpus: Option<u32>,
    pub loglvl: LogLevel,
    pub guest_loglvl: LogLevel,
    pub credit: CreditBoot,
}

impl Default for BootOptions {
    fn default() -> Self {
        Self {
            console_com1: false,
            dom0_mem: Dom0Mem::default(),
            dom0_max_vcpus: None,
            maxcpus: None,
            loglvl: LogLevel::Warning,
            guest_loglvl: LogLevel::None,
            credit: CreditBoot::default(),
        }
    }
}

/// Something on the command line that we could not use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected<'a> {
    Unknown(&'a str),
    Invalid { name: &'a str, value: &'a str, error: OptionError },
}

impl fmt::Display for Rejected<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(name) => write!(f, "parameter \"{name}\" unknown!"),
            Self::Invalid { name, value, error } => {
                write!(f, "parameter \"{name}\" has invalid value \"{value}\" ({error})")
            }
        }
    }
}

/// Parses a multiboot command line (image name first). `reject` sees every option that
/// was not used, in order; parsing goes on after it, as in Xen.
pub fn parse<'a>(cmdline: &'a str, mut reject: impl FnMut(Rejected<'a>)) -> BootOptions {
    let mut o = BootOptions::default();
    for opt in cmdline.split_ascii_whitespace().skip(1) {
        let (name, value) = opt.split_once('=').unwrap_or((opt, ""));
        let result = match name {
            "console" => {
                o.console_com1 = value.split(',').any(|c| c == "com1");
                Ok(())
            }
            "dom0_mem" => parse_dom0_mem(value).map(|m| o.dom0_mem = m),
            "dom0_max_vcpus" => parse_vcpu_range(value).map(|r| o.dom0_max_vcpus = Some(r)),
            "maxcpus" => value.parse::<u32>().map(|n| o.maxcpus = Some(n)).map_err(|_| OptionError::BadNumber),
            "nosmp" => {
                o.maxcpus = Some(1);
                Ok(())
            }
            "loglvl" => parse_loglvl(value).map(|l| o.loglvl = l),
            "guest_loglvl" => parse_loglvl(value).map(|l| o.guest_loglvl = l),
            "sched_credit_tslice_ms" => parse_int(value).map(|n| o.credit.tslice_ms = Some(n)),
            "sched_ratelimit_us" => parse_int(value).map(|n| o.credit.ratelimit_us = Some(n)),
            "vcpu_migration_delay" => parse_int(value).map(|n| o.credit.migr_delay_us = Some(n)),
            n if ACCEPTED.contains(&n) || ACCEPTED.contains(&n.trim_start_matches("no-")) => Ok(()),
            _ => {
                reject(Rejected::Unknown(name));
                continue;
            }
        };
        if let Err(error) = result {
            reject(Rejected::Invalid { name, value, error });
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(s: &str) -> (BootOptions, Vec<String>) {
        let mut bad = Vec::new();
        let o = parse(s, |r| bad.push(r.to_string()));
        (o, bad)
    }

    #[test]
    fn sizes_follow_xen_units() {
        assert_eq!(parse_size("768M"), Ok(768 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("4096"), Ok(4096 << 10));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("M"), Err(OptionError::BadSize));
        assert_eq!(parse_size("12Q"), Err(OptionError::BadSize));
        assert_eq!(parse_size("99999999999999999999T"), Err(OptionError::BadSize));
    }

    #[test]
    fn reference_rig_command_line() {
        let (o, bad) = parse_all("/tmp/xen console=com1 dom0_mem=768M,max:768M console_timestamps=boot");
        assert!(bad.is_empty(), "{bad:?}");
        assert!(o.console_com1);
        assert_eq!(o.dom0_mem, Dom0Mem { amount: Some(768 << 20), min: None, max: Some(768 << 20) });
    }

    #[test]
    fn the_image_name_is_not_an_option() {
        let (_, bad) = parse_all("dom0_mem=1G");
        assert!(bad.is_empty());
    }

    #[test]
    fn vcpus_and_log_levels() {
        let (o, bad) = parse_all("xen dom0_max_vcpus=1-4 loglvl=all guest_loglvl=debug/warning");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(o.dom0_max_vcpus, Some((1, 4)));
        assert_eq!(dom0_vcpus(o.dom0_max_vcpus, 1, 128), 1);
        assert_eq!(dom0_vcpus(o.dom0_max_vcpus, 8, 128), 4);
        assert_eq!(dom0_vcpus(Some((2, 2)), 1, 128), 2);
        assert_eq!(dom0_vcpus(None, 2, 128), 2);
        assert_eq!(dom0_vcpus(Some((0, 0)), 2, 128), 1);
        assert_eq!(dom0_vcpus(Some((200, 300)), 1, 128), 128);
        let (m, bad) = parse_all("xen maxcpus=1");
        assert!(bad.is_empty());
        assert_eq!(m.maxcpus, Some(1));
        assert_eq!(parse_all("xen nosmp").0.maxcpus, Some(1));
        assert_eq!(parse_all("xen maxcpus=two").1.len(), 1);
        assert_eq!(o.loglvl, LogLevel::All);
        assert_eq!(o.guest_loglvl, LogLevel::Debug);
    }

    #[test]
    fn unknown_and_invalid_options_are_reported_and_parsing_goes_on() {
        let (o, bad) = parse_all("xen frobnicate dom0_mem=lots dom0_max_vcpus=4-1 console=com1");
        assert_eq!(
            bad,
            [
                "parameter \"frobnicate\" unknown!",
                "parameter \"dom0_mem\" has invalid value \"lots\" (bad size)",
                "parameter \"dom0_max_vcpus\" has invalid value \"4-1\" (bad value)",
            ]
        );
        assert!(o.console_com1);
    }

    #[test]
    fn credit_parameters_read_as_xen_integers() {
        let (o, bad) = parse_all("xen sched_credit_tslice_ms=5 sched_ratelimit_us=0x64 vcpu_migration_delay=010");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(o.credit, CreditBoot { tslice_ms: Some(5), ratelimit_us: Some(100), migr_delay_us: Some(8) });
        assert_eq!(parse_all("xen sched_ratelimit_us=-1").0.credit.ratelimit_us, Some(-1));
        let (o, bad) = parse_all("xen sched_credit_tslice_ms=10ms sched_ratelimit_us=");
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert_eq!(o.credit, CreditBoot::default());
    }

    #[test]
    fn negated_known_options_are_accepted() {
        let (_, bad) = parse_all("xen no-reboot noreboot");
        assert!(bad.is_empty(), "{bad:?}");
    }
}
