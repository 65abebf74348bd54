//! `xl.cfg` files: `KEY = VALUE` lines where a value is a number, a `"string"` or
//! `'string'`, or a `[ "list", "of", "strings" ]` (which may span lines); `#` starts a
//! comment. Command-line overrides (`xl create cfg key=value`) use the same syntax.
//! Errors name the file, the line and the key, in one line.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Int(i64),
    List(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CfgError {
    pub file: String,
    pub line: usize,
    pub key: Option<String>,
    pub msg: String,
}

impl fmt::Display for CfgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{}:{}: {k}: {}", self.file, self.line, self.msg),
            None => write!(f, "{}:{}: {}", self.file, self.line, self.msg),
        }
    }
}

impl std::error::Error for CfgError {}

/// One `KEY = VALUE` with the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: Value,
    pub line: usize,
}

fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') => return &line[..i],
            _ => {}
        }
    }
    line
}

fn parse_string(s: &str) -> Option<(String, &str)> {
    let q = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &s[1..];
    let end = rest.find(q)?;
    Some((rest[..end].to_string(), &rest[end + 1..]))
}

fn parse_value(text: &str) -> Result<Value, String> {
    let t = text.trim().trim_end_matches(';').trim();
    if t.is_empty() {
        return Err("missing value".into());
    }
    if let Some(body) = t.strip_prefix('[') {
        let body = body.strip_suffix(']').ok_or("list without closing `]`")?;
        let mut items = Vec::new();
        let mut rest = body.trim();
        while !rest.is_empty() {
            let (s, after) = parse_string(rest).ok_or_else(|| format!("list item `{rest}` is not a quoted string"))?;
            items.push(s);
            rest = after.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
            } else if !rest.is_empty() {
                return Err(format!("expected `,` or `]` before `{rest}`"));
            }
        }
        return Ok(Value::List(items));
    }
    if t.starts_with('"') || t.starts_with('\'') {
        let (s, after) = parse_string(t).ok_or("unterminated string")?;
        if !after.trim().is_empty() {
            return Err(format!("junk after string: `{}`", after.trim()));
        }
        return Ok(Value::Str(s));
    }
    t.parse::<i64>().map(Value::Int).map_err(|_| format!("`{t}` is neither a number nor a quoted string"))
}

fn valid_key(k: &str) -> bool {
    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !k.starts_with(|c: char| c.is_ascii_digit())
}

/// Parses a whole file into settings, in order.
pub fn parse(file: &str, text: &str) -> Result<Vec<Setting>, CfgError> {
    let mut out = Vec::new();
    let mut pending: Option<(String, String, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = strip_comment(raw);
        if let Some((key, mut acc, start)) = pending.take() {
            acc.push(' ');
            acc.push_str(line);
            if line.contains(']') {
                let value = parse_value(&acc).map_err(|msg| CfgError { file: file.into(), line: start, key: Some(key.clone()), msg })?;
                out.push(Setting { key, value, line: start });
            } else {
                pending = Some((key, acc, start));
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| CfgError {
            file: file.into(),
            line: lineno,
            key: None,
            msg: format!("expected `KEY = VALUE`, got `{}`", line.trim()),
        })?;
        let key = k.trim().to_string();
        if !valid_key(&key) {
            return Err(CfgError { file: file.into(), line: lineno, key: None, msg: format!("bad key `{key}`") });
        }
        if v.trim_start().starts_with('[') && !v.contains(']') {
            pending = Some((key, v.to_string(), lineno));
            continue;
        }
        let value = parse_value(v).map_err(|msg| CfgError { file: file.into(), line: lineno, key: Some(key.clone()), msg })?;
        out.push(Setting { key, value, line: lineno });
    }
    if let Some((key, _, start)) = pending {
        return Err(CfgError { file: file.into(), line: start, key: Some(key), msg: "list without closing `]`".into() });
    }
    Ok(out)
}

/// What to do when the guest powers off, reboots or crashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnEvent {
    Destroy,
    Restart,
    Preserve,
}

impl OnEvent {
    fn parse(s: &str) -> Option<OnEvent> {
        match s {
            "destroy" => Some(OnEvent::Destroy),
            "restart" => Some(OnEvent::Restart),
            "preserve" => Some(OnEvent::Preserve),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            OnEvent::Destroy => "destroy",
            OnEvent::Restart => "restart",
            OnEvent::Preserve => "preserve",
        }
    }
}

/// A `disk=` entry (positional form `target,vdev,access` with an optional `phy:`/`file:`
/// prefix, or `key=value` pairs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    pub target: String,
    pub kind: String,
    pub vdev: String,
    pub writable: bool,
    pub backend: DiskBackend,
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
}

/// A `vif=` entry (`key=value` pairs).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Vif {
    pub mac: Option<String>,
    pub bridge: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    pub name: String,
    pub memory_mib: u64,
    pub maxmem_mib: u64,
    pub vcpus: u32,
    pub kernel: String,
    pub ramdisk: Option<String>,
    pub cmdline: String,
    pub on_poweroff: OnEvent,
    pub on_reboot: OnEvent,
    pub on_crash: OnEvent,
    pub disks: Vec<Disk>,
    pub vifs: Vec<Vif>,
}

pub fn parse_disk(spec: &str) -> Result<Disk, String> {
    let mut d = Disk { target: String::new(), kind: "phy".into(), vdev: String::new(), writable: true, backend: DiskBackend::default() };
    let mut positional = 0;
    for part in spec.split(',').map(str::trim) {
        if let Some((k, v)) = part.split_once('=') {
            match k {
                "target" => d.target = v.into(),
                "vdev" => d.vdev = v.into(),
                "access" => d.writable = parse_access(v)?,
                "backendtype" => {
                    d.backend = match v {
                        "qdisk" => DiskBackend::Qdisk,
                        "phy" => DiskBackend::Phy,
                        other => return Err(format!("backendtype `{other}` is not supported (phy or qdisk)")),
                    }
                }
                "format" => {
                    if v != "raw" {
                        return Err(format!("disk format `{v}` is not supported (raw)"));
                    }
                }
                "devtype" | "script" => {}
                other => return Err(format!("unknown disk key `{other}`")),
            }
            continue;
        }
        match positional {
            0 => {
                let (kind, target) = match part.split_once(':') {
                    Some((k @ ("phy" | "file" | "raw"), t)) => (k, t),
                    _ => ("phy", part),
                };
                d.kind = kind.into();
                d.target = target.into();
            }
            1 => d.vdev = part.into(),
            2 => d.writable = parse_access(part)?,
            _ => return Err(format!("too many fields in disk spec `{spec}`")),
        }
        positional += 1;
    }
    if d.target.is_empty() || d.vdev.is_empty() {
        return Err(format!("disk spec `{spec}` needs a target and a vdev"));
    }
    vdev_number(&d.vdev).ok_or_else(|| format!("unknown virtual device `{}`", d.vdev))?;
    Ok(d)
}

fn parse_access(s: &str) -> Result<bool, String> {
    match s {
        "w" | "rw" => Ok(true),
        "r" | "ro" => Ok(false),
        other => Err(format!("bad disk access `{other}` (r or w)")),
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

pub fn parse_vif(spec: &str) -> Result<Vif, String> {
    let mut v = Vif::default();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, val) = part.split_once('=').ok_or_else(|| format!("vif item `{part}` is not key=value"))?;
        match k {
            "mac" => v.mac = Some(val.into()),
            "bridge" => v.bridge = Some(val.into()),
            "type" | "model" | "script" | "ip" | "vifname" | "rate" => {}
            other => return Err(format!("unknown vif key `{other}`")),
        }
    }
    Ok(v)
}

/// The domain configuration from a file's settings plus overrides (later wins).
pub fn domain_config(file: &str, settings: &[Setting], overrides: &[Setting]) -> Result<DomainConfig, CfgError> {
    let err = |s: &Setting, msg: String| CfgError { file: file.into(), line: s.line, key: Some(s.key.clone()), msg };
    let mut name = None;
    let mut memory = 128i64;
    let mut maxmem = None;
    let mut vcpus = 1i64;
    let mut kernel = None;
    let mut ramdisk = None;
    let (mut cmdline, mut extra, mut root) = (None, None, None);
    let (mut on_poweroff, mut on_reboot, mut on_crash) = (OnEvent::Destroy, OnEvent::Restart, OnEvent::Destroy);
    let mut disks = Vec::new();
    let mut vifs = Vec::new();
    for s in settings.iter().chain(overrides) {
        let string = || match &s.value {
            Value::Str(v) => Ok(v.clone()),
            _ => Err(err(s, "expects a quoted string".into())),
        };
        let int = |lo: i64, hi: i64| match &s.value {
            Value::Int(v) if (lo..=hi).contains(v) => Ok(*v),
            Value::Int(v) => Err(err(s, format!("{v} is out of range {lo}..{hi}"))),
            _ => Err(err(s, "expects a number".into())),
        };
        let list = || match &s.value {
            Value::List(v) => Ok(v.clone()),
            _ => Err(err(s, "expects a list [ \"...\" ]".into())),
        };
        let event = || {
            let v = string()?;
            OnEvent::parse(&v).ok_or_else(|| err(s, format!("`{v}` is not destroy, restart or preserve")))
        };
        match s.key.as_str() {
            "name" => {
                let v = string()?;
                if v.is_empty() || v.contains('/') || v.len() > 64 {
                    return Err(err(s, format!("bad domain name `{v}`")));
                }
                name = Some(v)
            }
            "type" | "builder" => {
                let v = string()?;
                if v != "pv" && v != "linux" && v != "generic" {
                    return Err(err(s, format!("only PV guests are supported, not `{v}`")));
                }
            }
            "memory" => memory = int(1, 1 << 20)?,
            "maxmem" => maxmem = Some(int(1, 1 << 20)?),
            "vcpus" => vcpus = int(1, 128)?,
            "maxvcpus" => {
                int(1, 128)?;
            }
            "kernel" => kernel = Some(string()?),
            "ramdisk" => ramdisk = Some(string()?),
            "cmdline" => cmdline = Some(string()?),
            "extra" => extra = Some(string()?),
            "root" => root = Some(string()?),
            "on_poweroff" => on_poweroff = event()?,
            "on_reboot" => on_reboot = event()?,
            "on_crash" => on_crash = event()?,
            "disk" => {
                disks = list()?.iter().map(|d| parse_disk(d)).collect::<Result<_, _>>().map_err(|m| err(s, m))?;
            }
            "vif" => {
                vifs = list()?.iter().map(|v| parse_vif(v)).collect::<Result<_, _>>().map_err(|m| err(s, m))?;
            }
            _ => return Err(err(s, "unknown key".into())),
        }
    }
    let last_line = settings.last().map_or(1, |s| s.line);
    let missing = |key: &str| CfgError { file: file.into(), line: last_line, key: Some(key.into()), msg: "missing".into() };
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
    Ok(DomainConfig {
        name: name.ok_or_else(|| missing("name"))?,
        memory_mib: memory as u64,
        maxmem_mib: maxmem.unwrap_or(memory).max(memory) as u64,
        vcpus: vcpus as u32,
        kernel: kernel.ok_or_else(|| missing("kernel"))?,
        ramdisk,
        cmdline,
        on_poweroff,
        on_reboot,
        on_crash,
        disks,
        vifs,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CFG: &str = r#"
# a PV guest
name = "guest"
type = "pv"
kernel = "/rig/vmlinux"   # the kernel
ramdisk = '/rig/domu.cpio.gz'
extra = "console=hvc0 quiet"
root = "/dev/xvda1"
memory = 128
maxmem = 256
vcpus = 2
on_poweroff = "destroy"
on_reboot = "destroy"
disk = [ "phy:/dev/loop0,xvda,w,backendtype=phy",
         "file:/tmp/b.img,xvdb,r" ]
vif = [ "mac=00:16:3e:00:00:01,bridge=xenbr0" ]
"#;

    #[test]
    fn full_file() {
        let s = parse("g.cfg", CFG).unwrap();
        assert_eq!(s[0], Setting { key: "name".into(), value: Value::Str("guest".into()), line: 3 });
        let c = domain_config("g.cfg", &s, &[]).unwrap();
        assert_eq!(c.name, "guest");
        assert_eq!((c.memory_mib, c.maxmem_mib, c.vcpus), (128, 256, 2));
        assert_eq!(c.cmdline, "root=/dev/xvda1 console=hvc0 quiet");
        assert_eq!(c.ramdisk.as_deref(), Some("/rig/domu.cpio.gz"));
        assert_eq!(c.on_reboot, OnEvent::Destroy);
        assert_eq!(c.on_crash, OnEvent::Destroy);
        assert_eq!(c.disks.len(), 2);
        assert_eq!(c.disks[1], Disk { target: "/tmp/b.img".into(), kind: "file".into(), vdev: "xvdb".into(), writable: false, backend: DiskBackend::Qdisk });
        assert_eq!(c.disks[0].backend, DiskBackend::Phy);
        assert_eq!(c.vifs[0].bridge.as_deref(), Some("xenbr0"));
    }

    #[test]
    fn overrides_win() {
        let s = parse("g.cfg", CFG).unwrap();
        let o = parse_overrides(&["name=\"other\"".into(), "memory=64".into(), "cmdline=\"x\"".into()]).unwrap();
        let c = domain_config("g.cfg", &s, &o).unwrap();
        assert_eq!((c.name.as_str(), c.memory_mib, c.maxmem_mib, c.cmdline.as_str()), ("other", 64, 256, "x"));
        let e = parse_overrides(&["memory".into()]).unwrap_err();
        assert_eq!(e.to_string(), "<command line>:1: expected `KEY = VALUE`, got `memory`");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = domain_config("g.cfg", &parse("g.cfg", "name = \"a\"\nkernel = \"k\"\nfrobnicate = 1\n").unwrap(), &[]).unwrap_err();
        assert_eq!(e.to_string(), "g.cfg:3: frobnicate: unknown key");
        let e = domain_config("g.cfg", &parse("g.cfg", "name = \"a\"\nmemory = \"lots\"\n").unwrap(), &[]).unwrap_err();
        assert_eq!(e.to_string(), "g.cfg:2: memory: expects a number");
        let e = domain_config("g.cfg", &parse("g.cfg", "name=\"a\"\nkernel=\"k\"\nvcpus = 0\n").unwrap(), &[]).unwrap_err();
        assert_eq!(e.to_string(), "g.cfg:3: vcpus: 0 is out of range 1..128");
        let e = parse("g.cfg", "name = \"a\nx").unwrap_err();
        assert_eq!(e.to_string(), "g.cfg:1: name: unterminated string");
        let e = domain_config("g.cfg", &parse("g.cfg", "name=\"a\"\nkernel=\"k\"\non_crash=\"explode\"").unwrap(), &[]).unwrap_err();
        assert_eq!(e.to_string(), "g.cfg:3: on_crash: `explode` is not destroy, restart or preserve");
        let e = domain_config("g.cfg", &parse("g.cfg", "name=\"a\"\nkernel=\"k\"\ndisk=[\"/x,qqq,w\"]").unwrap(), &[]).unwrap_err();
        assert_eq!(e.to_string(), "g.cfg:3: disk: unknown virtual device `qqq`");
        let e = domain_config("g.cfg", &parse("g.cfg", "memory=1").unwrap(), &[]).unwrap_err();
        assert_eq!(e.to_string(), "g.cfg:1: name: missing");
        assert!(parse("g.cfg", "disk = [ \"a\",\n").is_err());
        let e = domain_config("g.cfg", &parse("g.cfg", "name=\"a\"\nkernel=\"k\"\ndisk=[\"/x,xvda,w,backendtype=tap\"]").unwrap(), &[]).unwrap_err();
        assert_eq!(e.to_string(), "g.cfg:3: disk: backendtype `tap` is not supported (phy or qdisk)");
    }

    #[test]
    fn vdev_numbers() {
        assert_eq!(vdev_number("xvda"), Some(51712));
        assert_eq!(vdev_number("xvdb1"), Some((202 << 8) | (1 << 4) | 1));
        assert_eq!(vdev_number("xvdq"), Some((1 << 28) | (16 << 8)));
        assert_eq!(vdev_number("hda"), Some(3 << 8));
        assert_eq!(vdev_number("vda"), None);
    }

    proptest! {
        #[test]
        fn parser_never_panics(text in "[ -~\n]{0,200}") {
            let _ = parse("f", &text).map(|s| domain_config("f", &s, &[]));
        }

        #[test]
        fn strings_and_numbers_round_trip(key in "[a-z_][a-z0-9_]{0,10}", s in "[ -!#-&(-~]{0,30}", n in any::<i64>()) {
            let text = format!("{key} = \"{s}\"\n{key} = {n}\n{key} = [ \"{s}\", '{s}' ]\n");
            let p = parse("f", &text).unwrap();
            prop_assert_eq!(&p[0].value, &Value::Str(s.clone()));
            prop_assert_eq!(&p[1].value, &Value::Int(n));
            prop_assert_eq!(&p[2].value, &Value::List(vec![s.clone(), s]));
        }
    }
}
