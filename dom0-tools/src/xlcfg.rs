//! `xl.cfg` files as xl parses them (libxlu's `libxlu_cfg_l.l`/`libxlu_cfg_y.y`):
//! `KEY = VALUE` or `KEY += VALUE` settings ended by a newline or `;`; a value is a
//! number (decimal, `0x` hex), a string in double or single quotes (both with C escapes:
//! `\n \t \r \a \b \f \v \\ \" \'`, `\xHH`, octal `\ooo`) or a `[ list, of, values ]` that
//! may span lines and end with a comma; `#` starts a comment. `+=` appends to the value
//! set before (both become lists). Command-line overrides (`xl create cfg key=value`)
//! are parsed the same way after the file. Then the PV keys of xl.cfg(5), `disk=` as
//! xl-disk-configuration(5) and `vif=` as xl-network-configuration(5) say.
//!
//! Errors are one line naming the file, the line and the key. Keys xl knows that do not
//! apply to a PV guest are accepted silently, as xl does; keys xl does not know, and PV
//! features this toolstack does not implement, give a warning line.

use serde::Serialize;
use winnow::ascii::{digit1, hex_digit1, till_line_ending};
use winnow::combinator::{alt, opt};
use winnow::error::{ContextError, ErrMode, StrContext};
use winnow::prelude::*;
use winnow::token::{any, one_of, take_while};

/// A value as written: numbers stay text (xl reads any atom as a number or a string on
/// demand, so `memory = "128"` is as good as `memory = 128`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A quoted string, escapes resolved.
    Str(String),
    /// A bare number, as written (`128`, `0x80`).
    Num(String),
    List(Vec<Value>),
}

impl Value {
    /// The atom's text (quoted or not); `None` for a list.
    pub fn atom(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Num(s) => Some(s),
            Value::List(_) => None,
        }
    }
}

/// A configuration error: one line, `file:line: key: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {}{msg}", key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default())]
pub struct CfgError {
    pub file: String,
    pub line: usize,
    pub key: Option<String>,
    pub msg: String,
}

/// `=` or `+=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Set,
    Append,
}

/// One `KEY = VALUE` with the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub op: Op,
    pub value: Value,
    pub line: usize,
}

// ---- the grammar (winnow) ----

type PResult<T> = winnow::ModalResult<T>;

fn fail<T>(what: &'static str) -> PResult<T> {
    let mut e = ContextError::new();
    e.push(StrContext::Label(what));
    Err(ErrMode::Cut(e))
}

/// Spaces, tabs and a comment up to (not including) the end of the line.
fn blank(i: &mut &str) -> PResult<()> {
    take_while(0.., [' ', '\t', '\r']).parse_next(i)?;
    opt(('#', till_line_ending)).parse_next(i)?;
    Ok(())
}

/// Blanks, comments and newlines (inside a list, and between settings).
fn blank_lines(i: &mut &str) -> PResult<()> {
    loop {
        blank(i)?;
        if opt('\n').parse_next(i)?.is_none() {
            return Ok(());
        }
    }
}

fn ident<'a>(i: &mut &'a str) -> PResult<&'a str> {
    (one_of(|c: char| c.is_ascii_alphabetic() || c == '_'), take_while(0.., |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .take()
        .parse_next(i)
}

fn number(i: &mut &str) -> PResult<String> {
    let n = alt(((alt(("0x", "0X")), hex_digit1).take(), digit1)).parse_next(i)?;
    if i.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        return fail("a number must end at a blank, `,`, `]`, `;` or the end of the line");
    }
    Ok(n.to_string())
}

/// A string in either quote style, with libxlu's escapes.
fn quoted(i: &mut &str) -> PResult<String> {
    let q = one_of(['"', '\'']).parse_next(i)?;
    let mut s = String::new();
    loop {
        if i.is_empty() || i.starts_with('\n') {
            return fail("unterminated string");
        }
        let c = any.parse_next(i)?;
        if c == q {
            return Ok(s);
        }
        if c != '\\' {
            s.push(c);
            continue;
        }
        if i.is_empty() || i.starts_with('\n') {
            return fail("unterminated string");
        }
        let e = any.parse_next(i)?;
        s.push(match e {
            '"' | '\'' | '\\' => e,
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            'x' => {
                let h = take_while(2..=2, |c: char| c.is_ascii_hexdigit()).parse_next(i).or_else(|_: ErrMode<ContextError>| fail("`\\x` needs two hex digits"))?;
                char::from(u8::from_str_radix(h, 16).expect("two hex digits"))
            }
            '0'..='7' => {
                let rest = take_while(0..=2, |c: char| ('0'..='7').contains(&c)).parse_next(i)?;
                let v = u32::from_str_radix(&format!("{e}{rest}"), 8).expect("octal digits");
                char::from_u32(v).unwrap_or('\u{fffd}')
            }
            _ => return fail("invalid character escape in quoted string"),
        });
    }
}

fn list(i: &mut &str) -> PResult<Value> {
    '['.parse_next(i)?;
    let mut items = Vec::new();
    loop {
        blank_lines(i)?;
        if opt(']').parse_next(i)?.is_some() {
            return Ok(Value::List(items));
        }
        if i.is_empty() {
            return fail("list without closing `]`");
        }
        items.push(value(i)?);
        blank_lines(i)?;
        if opt(',').parse_next(i)?.is_none() {
            blank_lines(i)?;
            if opt(']').parse_next(i)?.is_some() {
                return Ok(Value::List(items));
            }
            return if i.is_empty() { fail("list without closing `]`") } else { fail("expected `,` or `]` in list") };
        }
    }
}

fn value(i: &mut &str) -> PResult<Value> {
    if i.starts_with('[') {
        return list(i);
    }
    if i.starts_with(['"', '\'']) {
        return quoted(i).map(Value::Str);
    }
    if i.starts_with(|c: char| c.is_ascii_digit()) {
        return number(i).map(Value::Num);
    }
    if i.is_empty() || i.starts_with(['\n', ';', '#']) {
        return fail("missing value");
    }
    fail("value is neither a number, a quoted string nor a [ list ]")
}

/// `KEY = VALUE` or `KEY += VALUE` up to its end (newline, `;` or end of input).
fn setting<'a>(i: &mut &'a str, key: &mut Option<&'a str>) -> PResult<(Op, Value)> {
    let k = match ident(i) {
        Ok(k) => k,
        Err(_) => return fail("expected `KEY = VALUE`"),
    };
    *key = Some(k);
    blank(i)?;
    let op = match opt(alt(("+=".value(Op::Append), "=".value(Op::Set)))).parse_next(i)? {
        Some(op) => op,
        None => return fail("expected `=` or `+=` after the key"),
    };
    blank(i)?;
    let v = value(i)?;
    blank(i)?;
    if !(i.is_empty() || i.starts_with(['\n', ';'])) {
        return fail("junk after the value");
    }
    Ok((op, v))
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

fn message(e: ErrMode<ContextError>) -> String {
    match e {
        ErrMode::Cut(c) | ErrMode::Backtrack(c) => c
            .context()
            .find_map(|c| match c {
                StrContext::Label(l) => Some((*l).to_string()),
                _ => None,
            })
            .unwrap_or_else(|| "syntax error".into()),
        ErrMode::Incomplete(_) => "unexpected end of input".into(),
    }
}

/// Parses a whole file into settings, in order (`+=` kept as written; see [`merged`]).
pub fn parse(file: &str, text: &str) -> Result<Vec<Setting>, CfgError> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let i = &mut rest;
        let _ = blank_lines(i);
        while i.starts_with(';') {
            *i = &i[1..];
            let _ = blank_lines(i);
        }
        if i.is_empty() {
            return Ok(out);
        }
        let start = text.len() - i.len();
        let mut key = None;
        match setting(i, &mut key) {
            Ok((op, value)) => out.push(Setting { key: key.unwrap_or_default().to_string(), op, value, line: line_of(text, start) }),
            Err(e) => {
                let at = text.len() - i.len();
                return Err(CfgError {
                    file: file.into(),
                    line: line_of(text, at),
                    key: key.map(str::to_string),
                    msg: message(e),
                });
            }
        }
        if i.starts_with(';') {
            *i = &i[1..];
        }
    }
}

/// `key=value` arguments of `xl create`, parsed with the file syntax.
pub fn parse_overrides(args: &[String]) -> Result<Vec<Setting>, CfgError> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let mut s = parse("<command line>", a).map_err(|mut e| {
            e.line = i + 1;
            e
        })?;
        if s.is_empty() {
            return Err(CfgError { file: "<command line>".into(), line: i + 1, key: None, msg: format!("`{a}` is not key=value") });
        }
        for x in &mut s {
            x.line = i + 1;
        }
        out.extend(s);
    }
    Ok(out)
}

/// The settings with each `+=` folded into the value set before it (libxlu: both
/// become lists and are concatenated); a `+=` with nothing before is a plain set.
pub fn merged(settings: &[Setting]) -> Vec<Setting> {
    let mut out: Vec<Setting> = Vec::new();
    for s in settings {
        let prev = if s.op == Op::Append { out.iter_mut().rev().find(|p| p.key == s.key) } else { None };
        match prev {
            Some(p) => {
                let as_list = |v: &Value| match v {
                    Value::List(l) => l.clone(),
                    atom => vec![atom.clone()],
                };
                let mut l = as_list(&p.value);
                l.extend(as_list(&s.value));
                p.value = Value::List(l);
            }
            None => out.push(Setting { op: Op::Set, ..s.clone() }),
        }
    }
    out
}

/// `strtol(s, NULL, 0)` as xl reads numbers: `0x` hex, a leading `0` octal, else decimal.
pub fn parse_long(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if t.len() > 1 && t.starts_with('0') {
        i64::from_str_radix(&t[1..], 8).ok()
    } else {
        t.parse().ok()
    }
}

// ---- the domain configuration ----

/// What to do when the guest powers off, reboots, crashes or its watchdog fires
/// (xl.cfg(5) "Event Actions"; libxl's `action_on_shutdown`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnEvent {
    Destroy,
    Restart,
    RenameRestart,
    Preserve,
    CoredumpDestroy,
    CoredumpRestart,
    SoftReset,
}

impl OnEvent {
    pub fn parse(s: &str) -> Option<OnEvent> {
        Some(match s {
            "destroy" => OnEvent::Destroy,
            "restart" => OnEvent::Restart,
            "rename-restart" => OnEvent::RenameRestart,
            "preserve" => OnEvent::Preserve,
            "coredump-destroy" => OnEvent::CoredumpDestroy,
            "coredump-restart" => OnEvent::CoredumpRestart,
            "soft-reset" => OnEvent::SoftReset,
            _ => return None,
        })
    }
    /// The xl.cfg spelling.
    pub fn name(self) -> &'static str {
        match self {
            OnEvent::Destroy => "destroy",
            OnEvent::Restart => "restart",
            OnEvent::RenameRestart => "rename-restart",
            OnEvent::Preserve => "preserve",
            OnEvent::CoredumpDestroy => "coredump-destroy",
            OnEvent::CoredumpRestart => "coredump-restart",
            OnEvent::SoftReset => "soft-reset",
        }
    }
    /// libxl's JSON spelling (`libxl_action_on_shutdown`).
    pub fn libxl_name(self) -> &'static str {
        match self {
            OnEvent::Destroy => "destroy",
            OnEvent::Restart => "restart",
            OnEvent::RenameRestart => "restart_rename",
            OnEvent::Preserve => "preserve",
            OnEvent::CoredumpDestroy => "coredump_destroy",
            OnEvent::CoredumpRestart => "coredump_restart",
            OnEvent::SoftReset => "soft_reset",
        }
    }
}

impl Serialize for OnEvent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.libxl_name())
    }
}

/// Which back-end serves a disk (`backendtype=`), and so where the toolstack puts its
/// back-end directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DiskBackend {
    /// Our userspace `blkback` daemon, under `backend/qdisk` (the path libxl uses for
    /// QEMU's userspace back-end). The default: dom0 runs our daemon.
    #[default]
    Qdisk,
    /// Linux's kernel blkback, under `backend/vbd`; it needs `physical-device`, so a
    /// regular file is attached to a loop device first (as Xen's `block` script does).
    Phy,
}

impl DiskBackend {
    /// The back-end type in xenstore paths and the `type` key.
    pub fn xenstore_type(self) -> &'static str {
        match self {
            DiskBackend::Qdisk => "qdisk",
            DiskBackend::Phy => "vbd",
        }
    }
    fn libxl_name(self) -> &'static str {
        match self {
            DiskBackend::Qdisk => "qdisk",
            DiskBackend::Phy => "phy",
        }
    }
}

/// A `disk=` entry, xl-disk-configuration(5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    /// Block device or image file (empty: an empty CD-ROM drive).
    pub target: String,
    /// `raw`, `qcow`, `qcow2`, `vhd`, `qed` or `empty`.
    pub format: String,
    pub vdev: String,
    pub writable: bool,
    pub backend: DiskBackend,
    /// `backendtype=` was given (else the toolstack's default applies).
    pub backend_given: bool,
    pub cdrom: bool,
    /// `script=` or a deprecated `iscsi:`/`nbd:`/`enbd:`/`drbd:` prefix (`block-X`).
    pub script: Option<String>,
    /// `backend=`: the back-end domain's name.
    pub backend_domain: Option<String>,
    pub direct_io_safe: bool,
    /// `discard` / `no-discard`.
    pub discard: Option<bool>,
    /// `trusted` / `untrusted`.
    pub trusted: Option<bool>,
    /// `specification=` (`xen` or `virtio`).
    pub specification: Option<String>,
}

impl Default for Disk {
    fn default() -> Disk {
        Disk {
            target: String::new(),
            format: "raw".into(),
            vdev: String::new(),
            writable: true,
            backend: DiskBackend::default(),
            backend_given: false,
            cdrom: false,
            script: None,
            backend_domain: None,
            direct_io_safe: false,
            discard: None,
            trusted: None,
            specification: None,
        }
    }
}

const DISK_FORMATS: [&str; 5] = ["raw", "qcow", "qcow2", "vhd", "qed"];

/// Splits a positional vdev `hdc:cdrom` / `hdc:disk` (the deprecated devtype suffix).
fn vdev_and_devtype(s: &str, d: &mut Disk) -> Result<(), String> {
    let (vdev, devtype) = match s.rsplit_once(':') {
        Some((v, t)) => (v, Some(t)),
        None => (s, None),
    };
    match devtype {
        Some("cdrom") => d.cdrom = true,
        Some("disk") | None => {}
        Some(other) => return Err(format!("unknown deprecated disk type `{other}` (cdrom or disk)")),
    }
    d.vdev = vdev.into();
    Ok(())
}

pub fn parse_disk(spec: &str) -> Result<Disk, String> {
    let mut d = Disk::default();
    let mut access: Option<bool> = None;
    // Which parameters are set (each at most once, by position or by name).
    let (mut target_set, mut format_set, mut vdev_set, mut access_set) = (false, false, false, false);
    let twice = |name: &str| Err(format!("disk parameter `{name}` given twice in `{spec}`"));
    let mut had_prefix = false;
    let mut rest = spec;
    while !rest.is_empty() {
        let (part, after) = rest.split_once(',').unwrap_or((rest, ""));
        let part = part.trim_start();
        // `target=` swallows the rest of the spec, commas included; it must come last.
        if let Some(t) = part.strip_prefix("target=") {
            d.target = if after.is_empty() { t.to_string() } else { format!("{t},{after}") };
            break;
        }
        rest = after;
        if let Some((k, v)) = part.split_once('=') {
            let v = v.trim_end();
            match k {
                "format" => {
                    if format_set {
                        return twice("format");
                    }
                    format_set = true;
                    if !v.is_empty() {
                        if !DISK_FORMATS.contains(&v) && v != "empty" {
                            return Err(format!("unknown disk format `{v}` (raw, qcow, qcow2, vhd, qed)"));
                        }
                        d.format = v.into();
                    }
                }
                "vdev" => {
                    if vdev_set {
                        return twice("vdev");
                    }
                    vdev_set = true;
                    d.vdev = v.into();
                }
                "access" => {
                    if access_set {
                        return twice("access");
                    }
                    access_set = true;
                    if !v.is_empty() {
                        access = Some(parse_access(v)?);
                    }
                }
                "devtype" => match v {
                    "cdrom" => d.cdrom = true,
                    "disk" | "" => {}
                    other => return Err(format!("unknown devtype `{other}` (cdrom)")),
                },
                "backend" => d.backend_domain = Some(v.into()),
                "backendtype" => {
                    d.backend_given = true;
                    d.backend = match v {
                        "qdisk" => DiskBackend::Qdisk,
                        "phy" => DiskBackend::Phy,
                        other => return Err(format!("backendtype `{other}` is not supported (phy or qdisk)")),
                    }
                }
                "script" => d.script = Some(v.into()),
                "specification" => match v {
                    "xen" | "virtio" => d.specification = Some(v.into()),
                    other => return Err(format!("unknown specification `{other}` (xen or virtio)")),
                },
                "colo-host" | "colo-port" | "colo-export" | "active-disk" | "hidden-disk" => {
                    return Err(format!("COLO disk parameter `{k}` is not supported"))
                }
                other => return Err(format!("unknown disk parameter `{other}`")),
            }
            continue;
        }
        let word = part.trim_end();
        match word {
            "cdrom" => d.cdrom = true,
            "direct-io-safe" => d.direct_io_safe = true,
            "discard" | "no-discard" => d.discard = Some(word == "discard"),
            "trusted" | "untrusted" => d.trusted = Some(word == "trusted"),
            "colo" => return Err("COLO disks are not supported".into()),
            _ if !target_set => {
                // Deprecated prefixes, possibly stacked (`tap:aio:qcow2:/path`).
                let mut t = word;
                while let Some((p, r)) = t.split_once(':') {
                    match p {
                        "raw" | "qcow" | "qcow2" | "vhd" => {
                            d.format = p.into();
                            format_set = true;
                        }
                        "iscsi" | "nbd" | "enbd" | "drbd" => d.script = Some(format!("block-{p}")),
                        "tapdisk" | "tap2" | "tap" | "aio" | "ioemu" | "file" | "phy" => {}
                        _ => break,
                    }
                    had_prefix = true;
                    t = r;
                }
                d.target = t.to_string();
                target_set = true;
            }
            _ if !had_prefix && !format_set => {
                format_set = true;
                let mut probe = Disk::default();
                if d.target.is_empty() && vdev_and_devtype(word, &mut probe).is_ok() && vdev_number(&probe.vdev).is_some() {
                    // `,hdc:cdrom,r`: xend's empty CD-ROM drive.
                    d.format = "empty".into();
                    vdev_and_devtype(word, &mut d)?;
                    vdev_set = true;
                } else if !word.is_empty() {
                    if !DISK_FORMATS.contains(&word) {
                        return Err(format!(
                            "unknown disk format `{word}` (raw, qcow, qcow2, vhd, qed; the old `target,vdev,access` form needs a prefix such as `phy:`)"
                        ));
                    }
                    d.format = word.into();
                }
            }
            _ if !vdev_set => {
                vdev_set = true;
                vdev_and_devtype(word, &mut d)?;
            }
            _ if !access_set => {
                access_set = true;
                if !word.is_empty() {
                    access = Some(parse_access(word)?);
                }
            }
            _ => return Err(format!("too many positional parameters in disk spec `{spec}`")),
        }
    }
    d.writable = access.unwrap_or(!d.cdrom);
    if d.vdev.is_empty() {
        return Err(format!("disk spec `{spec}` has no vdev"));
    }
    if d.target.is_empty() {
        if !d.cdrom {
            return Err(format!("disk spec `{spec}` has no target"));
        }
        d.format = "empty".into();
    }
    vdev_number(&d.vdev).ok_or_else(|| format!("unknown virtual device `{}`", d.vdev))?;
    Ok(d)
}

fn parse_access(s: &str) -> Result<bool, String> {
    match s {
        "w" | "rw" => Ok(true),
        "r" | "ro" => Ok(false),
        other => Err(format!("bad disk access `{other}` (r, ro, w or rw)")),
    }
}

/// The `virtual-device` number of a `xvdX[N]` / `hdX` / `sdX` name (Xen's vbd
/// interface numbering).
pub fn vdev_number(vdev: &str) -> Option<u32> {
    let (major, rest) = if let Some(r) = vdev.strip_prefix("xvd") {
        (202u32, r)
    } else if let Some(r) = vdev.strip_prefix("hd") {
        (3, r)
    } else if let Some(r) = vdev.strip_prefix("sd") {
        (8, r)
    } else {
        return None;
    };
    let letters: String = rest.chars().take_while(|c| c.is_ascii_lowercase()).collect();
    let part: u32 = match &rest[letters.len()..] {
        "" => 0,
        p => p.parse().ok()?,
    };
    if letters.is_empty() || letters.len() > 2 {
        return None;
    }
    let mut disk = 0u32;
    for c in letters.chars() {
        disk = disk * 26 + (c as u32 - 'a' as u32 + 1);
    }
    let disk = disk - 1;
    if major == 202 {
        if disk < 16 && part < 16 {
            Some((202 << 8) | (disk << 4) | part)
        } else {
            Some((1 << 28) | (disk << 8) | part)
        }
    } else if disk < 16 && part < 16 {
        Some((major << 8) | (disk << 4) | part)
    } else {
        None
    }
}

/// A `vif=` entry, xl-network-configuration(5).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Vif {
    pub mac: Option<String>,
    pub bridge: Option<String>,
    pub ip: Option<String>,
    pub script: Option<String>,
    /// `vif` or `ioemu` (HVM only; accepted).
    pub nictype: Option<String>,
    pub model: Option<String>,
    pub vifname: Option<String>,
    /// `rate=`: bytes per interval and the interval in microseconds.
    pub rate: Option<(u64, u32)>,
    pub backend_domain: Option<String>,
    pub gatewaydev: Option<String>,
    pub devid: Option<u32>,
    pub mtu: Option<u32>,
    pub trusted: Option<bool>,
}

/// A MAC address `xx:xx:xx:xx:xx:xx` (hex, either case), normalised to lower case.
fn parse_mac(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split(':').collect();
    (parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))).then(|| s.to_ascii_lowercase())
}

/// `RATE/s[@INTERVAL]` (libxl's `xlu_vif_parse_rate`): bytes per interval and the
/// interval in microseconds (default 50 ms).
pub fn parse_rate(s: &str) -> Result<(u64, u32), String> {
    let bad = || format!("bad vif rate `{s}` (like 10Mb/s or 1MB/s@20ms)");
    let (rate, interval) = match s.split_once('@') {
        Some((r, i)) => (r, Some(i)),
        None => (s, None),
    };
    let rate = rate.strip_suffix("/s").ok_or_else(bad)?;
    let digits = rate.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &rate[digits.len()..];
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let bytes_per_s = match unit {
        "GB" => n * 1_000_000_000,
        "MB" => n * 1_000_000,
        "KB" => n * 1_000,
        "B" | "" => n,
        "Gb" => n * 1_000_000_000 / 8,
        "Mb" => n * 1_000_000 / 8,
        "Kb" => n * 1_000 / 8,
        "b" => n / 8,
        _ => return Err(bad()),
    };
    let usecs: u64 = match interval {
        None => 50_000,
        Some(i) => {
            let digits = i.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let v: u64 = digits.parse().map_err(|_| bad())?;
            match &i[digits.len()..] {
                "s" => v * 1_000_000,
                "ms" => v * 1_000,
                "us" | "" => v,
                _ => return Err(bad()),
            }
        }
    };
    if bytes_per_s == 0 || usecs == 0 || usecs > u64::from(u32::MAX) {
        return Err(bad());
    }
    Ok((bytes_per_s.saturating_mul(usecs) / 1_000_000, usecs as u32))
}

/// Parses a vif spec; unknown keys are returned as warnings (xl ignores them).
pub fn parse_vif(spec: &str) -> Result<(Vif, Vec<String>), String> {
    let mut v = Vif::default();
    let mut warnings = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "trusted" | "untrusted" => {
                v.trusted = Some(part == "trusted");
                continue;
            }
            _ => {}
        }
        let (k, val) = part.split_once('=').ok_or_else(|| format!("vif item `{part}` is not key=value"))?;
        let val = val.to_string();
        match k {
            "mac" => v.mac = Some(parse_mac(&val).ok_or_else(|| format!("bad vif mac `{val}` (xx:xx:xx:xx:xx:xx)"))?),
            "bridge" => v.bridge = Some(val),
            "ip" => v.ip = Some(val),
            "script" => v.script = Some(val),
            "type" => match val.as_str() {
                "vif" | "ioemu" => v.nictype = Some(val),
                _ => return Err(format!("bad vif type `{val}` (vif or ioemu)")),
            },
            "model" => v.model = Some(val),
            "vifname" => v.vifname = Some(val),
            "rate" => v.rate = Some(parse_rate(&val)?),
            "backend" => v.backend_domain = Some(val),
            "gatewaydev" | "netdev" => v.gatewaydev = Some(val),
            "devid" => v.devid = Some(val.parse().map_err(|_| format!("bad vif devid `{val}`"))?),
            "mtu" => v.mtu = Some(val.parse().map_err(|_| format!("bad vif mtu `{val}`"))?),
            "accel" | "forwarddev" | "rate_bytes_per_interval" => warnings.push(format!("vif parameter `{k}` is not supported, ignored")),
            other => warnings.push(format!("unknown vif parameter `{other}`, ignored")),
        }
    }
    Ok((v, warnings))
}

/// A CPU affinity (`cpus=`, `cpus_soft=`): one spec for every vCPU, or one per vCPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpuAffinity {
    All(String),
    PerVcpu(Vec<String>),
}

/// Checks a cpu list as xl's `parse_cpurange` (`crate::cpumap`): `all`, `N`, `N-M`,
/// `nodes:N`, each optionally negated with `^`, comma-separated; the host's CPU count is
/// not known here, so what it names is checked against it at create.
fn check_cpurange(s: &str) -> Result<(), String> {
    crate::cpumap::parse_cpurange(s, crate::cpumap::MAX_CPUS).map(|_| ()).map_err(|e| format!("bad cpu list `{s}`: {e}"))
}

impl CpuAffinity {
    /// The spec that applies to vCPU `v` (`None`: no affinity given for it, all CPUs).
    pub fn for_vcpu(&self, v: u32) -> Option<&str> {
        match self {
            CpuAffinity::All(s) => Some(s),
            CpuAffinity::PerVcpu(l) => l.get(v as usize).map(String::as_str),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    pub name: String,
    /// `uuid=`; `None`: the toolstack makes one.
    pub uuid: Option<[u8; 16]>,
    pub memory_mib: u64,
    pub maxmem_mib: u64,
    /// vCPUs online at boot.
    pub vcpus: u32,
    /// vCPUs the domain can have (`maxvcpus`, at least `vcpus`).
    pub max_vcpus: u32,
    pub cpus: Option<CpuAffinity>,
    pub cpus_soft: Option<CpuAffinity>,
    /// `cpu_weight=` (credit weight, 1..65535) and `cap=` (percent of one CPU, 0: none).
    pub cpu_weight: Option<u16>,
    pub cap: Option<u16>,
    pub kernel: String,
    pub ramdisk: Option<String>,
    pub cmdline: String,
    pub bootloader: Option<String>,
    pub bootloader_args: Vec<String>,
    pub on_poweroff: OnEvent,
    pub on_reboot: OnEvent,
    pub on_crash: OnEvent,
    pub on_watchdog: OnEvent,
    pub on_soft_reset: OnEvent,
    pub disks: Vec<Disk>,
    pub vifs: Vec<Vif>,
    /// Lines for stderr: keys xl does not know, PV features this toolstack ignores.
    pub warnings: Vec<String>,
}

/// Keys xl.cfg(5) defines that do not apply to a PV guest (HVM, PVH, Arm, device
/// model): accepted silently, as xl does for a PV domain.
const NOT_FOR_PV: &[&str] = &[
    "acpi", "acpi_firmware", "acpi_s3", "acpi_s4", "acpi_laptop_slate", "altp2m", "altp2mhvm", "apic", "bios",
    "bios_path_override", "boot", "cpuid", "device_model_args", "device_model_args_hvm", "device_model_override",
    "device_model_stubdomain_override", "device_model_stubdomain_seclabel", "device_model_user", "device_model_version",
    "device_tree", "dm_restrict", "dtdev", "firmware", "firmware_override", "gfx_passthru", "gic_version", "hap", "hdtype",
    "hpet", "keymap", "localtime", "mca_caps", "ms_vm_genid", "nestedhvm", "nographic", "nr_spis", "oos", "opengl", "pae",
    "pvshim", "pvshim_cmdline", "pvshim_extra", "pvshim_path", "rdm", "rdm_mem_boundary", "rtc_timeoffset", "sdl", "serial",
    "shadow_memory", "smbios_firmware", "soundhw", "spice", "spice_image_compression", "spice_streaming_video",
    "spiceagent_mouse", "spicedisable_ticketing", "spicehost", "spicepasswd", "spiceport", "spicetls_port", "spiceusbredirection",
    "spicevdagent", "stdvga", "stubdomain_kernel", "stubdomain_memory", "stubdomain_ramdisk", "tee", "timer_mode", "usb",
    "usbctrl", "usbdev", "usbdevice", "vga", "videoram", "viridian", "vnc", "vncconsole", "vncdisplay", "vnclisten", "vncpasswd",
    "vncunused", "vpt_align", "vuart", "xen_platform_pci", "vmtrace_buf_kb", "vpmu", "trap_unmapped_accesses", "sve",
    "arm_sve_vl", "vcpu_soft_affinity", "vcpu_hard_affinity", "pvh", "hvm_pirq",
];

/// Keys xl knows that apply to PV but that this toolstack does not implement: accepted
/// with a warning line.
const PV_NOT_IMPLEMENTED: &[&str] = &[
    "pool", "seclabel", "init_seclabel", "driver_domain", "max_grant_frames", "max_maptrack_frames", "max_grant_version",
    "max_event_channels", "nomigrate", "tsc_mode", "e820_host", "pci", "pci_permissive", "pci_msitranslate", "pci_seize",
    "pci_power_mgmt", "ioports", "irqs", "iomem", "weight", "period", "slice", "latency", "extratime",
    "vtpm", "vfb", "vkb", "channel", "p9", "pvcalls", "vdispl", "vsnd", "vscsi", "vnuma", "claim_mode", "device_model_args_pv",
    "passthrough", "bootloader_restrict", "bootloader_user", "msitranslate", "gfx_passthru_igd", "migration_channel",
    "vif2", "vdev",
];

/// The domain configuration from a file's settings plus overrides (later wins, `+=`
/// appends).
pub fn domain_config(file: &str, settings: &[Setting], overrides: &[Setting]) -> Result<DomainConfig, CfgError> {
    let all: Vec<Setting> = settings.iter().chain(overrides).cloned().collect();
    let all = merged(&all);
    let err = |s: &Setting, msg: String| CfgError { file: file.into(), line: s.line, key: Some(s.key.clone()), msg };
    let mut name = None;
    let mut uuid = None;
    let mut memory = 128i64;
    let mut maxmem = None;
    let mut vcpus = 1i64;
    let mut maxvcpus = None;
    let (mut cpus, mut cpus_soft) = (None, None);
    let (mut cpu_weight, mut cap) = (None, None);
    let mut kernel = None;
    let mut ramdisk = None;
    let (mut cmdline, mut extra, mut root) = (None, None, None);
    let mut bootloader: Option<(String, usize)> = None;
    let mut bootloader_args = Vec::new();
    let mut on = [OnEvent::Destroy, OnEvent::Restart, OnEvent::Destroy, OnEvent::Destroy, OnEvent::SoftReset];
    let mut disks = Vec::new();
    let mut vifs = Vec::new();
    let mut warnings = Vec::new();
    for s in &all {
        let string = || match &s.value {
            Value::List(_) => Err(err(s, "expects a string, not a list".into())),
            v => Ok(v.atom().unwrap_or_default().to_string()),
        };
        let int = |lo: i64, hi: i64| match s.value.atom().map(|a| (a, parse_long(a))) {
            Some((_, Some(v))) if (lo..=hi).contains(&v) => Ok(v),
            Some((_, Some(v))) => Err(err(s, format!("{v} is out of range {lo}..{hi}"))),
            _ => Err(err(s, "expects a number".into())),
        };
        let strings = || match &s.value {
            Value::List(l) => l.iter().map(|v| v.atom().map(str::to_string).ok_or_else(|| err(s, "expects a list of strings".into()))).collect(),
            _ => Err(err(s, "expects a list [ '...', ... ]".into())),
        };
        let event = || {
            let v = string()?;
            OnEvent::parse(&v).ok_or_else(|| {
                err(s, format!("`{v}` is not destroy, restart, rename-restart, preserve, coredump-destroy or coredump-restart"))
            })
        };
        let affinity = || -> Result<CpuAffinity, CfgError> {
            match &s.value {
                Value::List(_) => {
                    let l: Vec<String> = strings()?;
                    for c in &l {
                        check_cpurange(c).map_err(|m| err(s, m))?;
                    }
                    Ok(CpuAffinity::PerVcpu(l))
                }
                _ => {
                    let c = string()?;
                    check_cpurange(&c).map_err(|m| err(s, m))?;
                    Ok(CpuAffinity::All(c))
                }
            }
        };
        match s.key.as_str() {
            "name" => {
                let v = string()?;
                if v.is_empty() || v.contains('/') || v.len() > 64 {
                    return Err(err(s, format!("bad domain name `{v}`")));
                }
                name = Some(v)
            }
            "uuid" => {
                let v = string()?;
                uuid = Some(parse_uuid(&v).ok_or_else(|| err(s, format!("`{v}` is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")))?);
            }
            "type" => {
                let v = string()?;
                match v.as_str() {
                    "pv" => {}
                    "pvh" | "hvm" => return Err(err(s, format!("only PV guests are supported, not `{v}`"))),
                    _ => return Err(err(s, format!("unknown guest type `{v}` (pv, pvh or hvm)"))),
                }
            }
            "builder" => {
                let v = string()?;
                if v != "linux" && v != "generic" {
                    return Err(err(s, format!("only PV guests are supported, not builder `{v}`")));
                }
            }
            "memory" => memory = int(1, 1 << 24)?,
            "maxmem" => maxmem = Some(int(1, 1 << 24)?),
            "vcpus" => vcpus = int(1, 128)?,
            "maxvcpus" => maxvcpus = Some(int(1, 128)?),
            "cpus" => cpus = Some(affinity()?),
            "cpus_soft" => cpus_soft = Some(affinity()?),
            // libxl's ranges (`sched_credit_domain_set`); the cap's upper end, 100 per
            // vCPU, is checked below once the vCPU count is known.
            "cpu_weight" => cpu_weight = Some(int(1, 65535)? as u16),
            "cap" => cap = Some((int(0, 12800)? as u16, s.clone())),
            "kernel" => kernel = Some(string()?),
            "ramdisk" => ramdisk = Some(string()?),
            "cmdline" => cmdline = Some(string()?),
            "extra" => extra = Some(string()?),
            "root" => root = Some(string()?),
            "bootloader" => bootloader = Some((string()?, s.line)),
            "bootloader_args" => {
                bootloader_args = match &s.value {
                    Value::List(_) => strings()?,
                    _ => string()?.split_whitespace().map(str::to_string).collect(),
                }
            }
            "on_poweroff" => on[0] = event()?,
            "on_reboot" => on[1] = event()?,
            "on_crash" => on[2] = event()?,
            "on_watchdog" => on[3] = event()?,
            "on_soft_reset" => on[4] = event()?,
            "disk" => {
                disks = strings()?.iter().map(|d| parse_disk(d)).collect::<Result<_, _>>().map_err(|m| err(s, m))?;
            }
            "vif" => {
                vifs = Vec::new();
                for spec in strings()? {
                    let (v, w) = parse_vif(&spec).map_err(|m| err(s, m))?;
                    warnings.extend(w.into_iter().map(|w| format!("{file}:{}: vif: {w}", s.line)));
                    vifs.push(v);
                }
            }
            k if NOT_FOR_PV.contains(&k) || k.starts_with("spice") || k.starts_with("device_model") => {}
            k if PV_NOT_IMPLEMENTED.contains(&k) => {
                warnings.push(format!("{file}:{}: {k}: not supported by this toolstack, ignored", s.line));
            }
            k => warnings.push(format!("{file}:{}: {k}: unknown key, ignored", s.line)),
        }
    }
    let last_line = all.iter().map(|s| s.line).max().unwrap_or(1);
    let missing = |key: &str| CfgError { file: file.into(), line: last_line, key: Some(key.into()), msg: "missing".into() };
    let name = name.ok_or_else(|| missing("name"))?;
    let kernel = match (kernel, &bootloader) {
        (Some(k), None) => k,
        (Some(k), Some((b, line))) => {
            warnings.push(format!("{file}:{line}: bootloader: `{b}` not run: booting kernel `{k}` directly"));
            k
        }
        (None, Some((b, line))) => {
            return Err(CfgError {
                file: file.into(),
                line: *line,
                key: Some("bootloader".into()),
                msg: format!("`{b}`: booting through a bootloader (pygrub) is not supported; set kernel= (and ramdisk=) instead"),
            })
        }
        (None, None) => return Err(missing("kernel")),
    };
    let cmdline = cmdline.unwrap_or_else(|| {
        let mut c = String::new();
        if let Some(r) = root {
            c.push_str(&format!("root={r}"));
        }
        if let Some(e) = extra {
            if !c.is_empty() {
                c.push(' ');
            }
            c.push_str(&e);
        }
        c
    });
    let max_vcpus = maxvcpus.unwrap_or(vcpus).max(vcpus);
    if let Some((c, s)) = &cap {
        if i64::from(*c) > max_vcpus * 100 {
            return Err(err(s, format!("{c} is out of range 0..{} (100 per vCPU)", max_vcpus * 100)));
        }
    }
    let cap = cap.map(|(c, _)| c);
    Ok(DomainConfig {
        name,
        uuid,
        memory_mib: memory as u64,
        maxmem_mib: maxmem.unwrap_or(memory).max(memory) as u64,
        vcpus: vcpus as u32,
        max_vcpus: max_vcpus as u32,
        cpus,
        cpus_soft,
        cpu_weight,
        cap,
        kernel,
        ramdisk,
        cmdline,
        bootloader: bootloader.map(|(b, _)| b),
        bootloader_args,
        on_poweroff: on[0],
        on_reboot: on[1],
        on_crash: on[2],
        on_watchdog: on[3],
        on_soft_reset: on[4],
        disks,
        vifs,
        warnings,
    })
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let groups: Vec<&str> = s.split('-').collect();
    if groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
        return None;
    }
    let hex: String = groups.concat();
    let mut u = [0u8; 16];
    for (i, b) in u.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(u)
}

pub fn uuid_string(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

// ---- `xl create -n`: libxl's domain_config as JSON ----

#[derive(Serialize)]
struct JsonConfig<'a> {
    c_info: JsonCInfo<'a>,
    b_info: JsonBInfo<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    disks: Vec<JsonDisk<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    nics: Vec<JsonNic<'a>>,
    on_poweroff: OnEvent,
    on_reboot: OnEvent,
    on_watchdog: OnEvent,
    on_crash: OnEvent,
    on_soft_reset: OnEvent,
}

#[derive(Serialize)]
struct JsonCInfo<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    uuid: Option<String>,
}

#[derive(Serialize)]
struct JsonBInfo<'a> {
    max_vcpus: u32,
    avail_vcpus: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vcpu_hard_affinity: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vcpu_soft_affinity: Option<Vec<&'a str>>,
    max_memkb: u64,
    target_memkb: u64,
    kernel: &'a str,
    cmdline: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ramdisk: Option<&'a str>,
    #[serde(rename = "type.pv")]
    pv: JsonPv<'a>,
}

#[derive(Serialize)]
struct JsonPv<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    bootloader: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    bootloader_args: &'a [String],
}

#[derive(Serialize)]
struct JsonDisk<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    backend_domname: Option<&'a str>,
    pdev_path: &'a str,
    vdev: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    backend: Option<&'static str>,
    format: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    script: Option<&'a str>,
    removable: u32,
    readwrite: u32,
    is_cdrom: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    direct_io_safe: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    discard_enable: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trusted: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    specification: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonNic<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    backend_domname: Option<&'a str>,
    devid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    mtu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mac: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bridge: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ifname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    script: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nictype: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_bytes_per_interval: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_interval_usecs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gatewaydev: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trusted: Option<&'static str>,
}

fn libxl_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

fn affinity_json(a: &Option<CpuAffinity>) -> Option<Vec<&str>> {
    a.as_ref().map(|a| match a {
        CpuAffinity::All(s) => vec![s.as_str()],
        CpuAffinity::PerVcpu(l) => l.iter().map(String::as_str).collect(),
    })
}

impl DomainConfig {
    /// What `xl create -n` prints: the configuration in libxl's `libxl_domain_config`
    /// JSON shape (`c_info`, `b_info`, `disks`, `nics`, `on_*`), as parsed (before
    /// libxl's defaults).
    pub fn to_libxl_json(&self) -> String {
        let j = JsonConfig {
            c_info: JsonCInfo { kind: "pv", name: &self.name, uuid: self.uuid.as_ref().map(uuid_string) },
            b_info: JsonBInfo {
                max_vcpus: self.max_vcpus,
                avail_vcpus: (0..self.vcpus).collect(),
                vcpu_hard_affinity: affinity_json(&self.cpus),
                vcpu_soft_affinity: affinity_json(&self.cpus_soft),
                max_memkb: self.maxmem_mib << 10,
                target_memkb: self.memory_mib << 10,
                kernel: &self.kernel,
                cmdline: &self.cmdline,
                ramdisk: self.ramdisk.as_deref(),
                pv: JsonPv { bootloader: self.bootloader.as_deref(), bootloader_args: &self.bootloader_args },
            },
            disks: self
                .disks
                .iter()
                .map(|d| JsonDisk {
                    backend_domname: d.backend_domain.as_deref(),
                    pdev_path: &d.target,
                    vdev: &d.vdev,
                    backend: d.backend_given.then(|| d.backend.libxl_name()),
                    format: &d.format,
                    script: d.script.as_deref(),
                    removable: u32::from(d.cdrom),
                    readwrite: u32::from(d.writable),
                    is_cdrom: u32::from(d.cdrom),
                    direct_io_safe: d.direct_io_safe,
                    discard_enable: d.discard.map(libxl_bool),
                    trusted: d.trusted.map(libxl_bool),
                    specification: d.specification.as_deref(),
                })
                .collect(),
            nics: self
                .vifs
                .iter()
                .enumerate()
                .map(|(i, v)| JsonNic {
                    backend_domname: v.backend_domain.as_deref(),
                    devid: v.devid.unwrap_or(i as u32),
                    mtu: v.mtu,
                    model: v.model.as_deref(),
                    mac: v.mac.as_deref(),
                    ip: v.ip.as_deref(),
                    bridge: v.bridge.as_deref(),
                    ifname: v.vifname.as_deref(),
                    script: v.script.as_deref(),
                    nictype: v.nictype.as_deref().map(|t| if t == "ioemu" { "vif_ioemu" } else { "vif" }),
                    rate_bytes_per_interval: v.rate.map(|r| r.0),
                    rate_interval_usecs: v.rate.map(|r| r.1),
                    gatewaydev: v.gatewaydev.as_deref(),
                    trusted: v.trusted.map(libxl_bool),
                })
                .collect(),
            on_poweroff: self.on_poweroff,
            on_reboot: self.on_reboot,
            on_watchdog: self.on_watchdog,
            on_crash: self.on_crash,
            on_soft_reset: self.on_soft_reset,
        };
        serde_json::to_string_pretty(&j).expect("plain data serialises")
    }
}

#[cfg(test)]
mod tests;
