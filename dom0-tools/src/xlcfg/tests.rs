use super::*;
use proptest::prelude::*;
use proptest::prelude::any;

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

fn config(text: &str) -> Result<DomainConfig, CfgError> {
    domain_config("g.cfg", &parse("g.cfg", text)?, &[])
}

fn value(text: &str) -> Value {
    let s = parse("v.cfg", &format!("k = {text}\n")).unwrap();
    assert_eq!(s.len(), 1, "{text}");
    s[0].value.clone()
}

fn str_(s: &str) -> Value {
    Value::Str(s.into())
}

#[test]
fn full_file() {
    let s = parse("g.cfg", CFG).unwrap();
    assert_eq!(s[0], Setting { key: "name".into(), op: Op::Set, value: str_("guest"), line: 3 });
    let c = domain_config("g.cfg", &s, &[]).unwrap();
    assert_eq!(c.name, "guest");
    assert_eq!((c.memory_mib, c.maxmem_mib, c.vcpus, c.max_vcpus), (128, 256, 2, 2));
    assert_eq!(c.cmdline, "root=/dev/xvda1 console=hvc0 quiet");
    assert_eq!(c.ramdisk.as_deref(), Some("/rig/domu.cpio.gz"));
    assert_eq!((c.on_reboot, c.on_crash, c.on_watchdog), (OnEvent::Destroy, OnEvent::Destroy, OnEvent::Destroy));
    assert_eq!(c.disks.len(), 2);
    assert_eq!(c.disks[1], Disk { target: "/tmp/b.img".into(), vdev: "xvdb".into(), writable: false, ..Disk::default() });
    assert_eq!(c.disks[0].backend, DiskBackend::Phy);
    assert_eq!(c.vifs[0].bridge.as_deref(), Some("xenbr0"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn strings_in_both_quote_styles_with_escapes() {
    assert_eq!(value(r#""plain""#), str_("plain"));
    assert_eq!(value("'plain'"), str_("plain"));
    assert_eq!(value(r#""a\"b\'c\\d""#), str_("a\"b'c\\d"));
    assert_eq!(value(r#"'a\'b\"c'"#), str_("a'b\"c"));
    assert_eq!(value(r#""\n\t\r\a\b\f\v""#), str_("\n\t\r\x07\x08\x0c\x0b"));
    assert_eq!(value(r#"'\x41\x7a\101\60\0'"#), str_("AzA0\0"));
    assert_eq!(value(r#""it's""#), str_("it's"));
    assert_eq!(value(r#"'say "hi"'"#), str_("say \"hi\""));
    assert_eq!(value("\"a # not a comment\""), str_("a # not a comment"));
    let e = parse("q.cfg", "k = \"bad \\q escape\"\n").unwrap_err();
    assert_eq!(e.to_string(), "q.cfg:1: k: invalid character escape in quoted string");
    let e = parse("q.cfg", "a = 1\nk = '\\x4'\n").unwrap_err();
    assert_eq!(e.to_string(), "q.cfg:2: k: `\\x` needs two hex digits");
}

#[test]
fn numbers_decimal_and_hex() {
    assert_eq!(value("128"), Value::Num("128".into()));
    assert_eq!(value("0x80"), Value::Num("0x80".into()));
    assert_eq!(parse_long("0x80"), Some(128));
    assert_eq!(parse_long("0X1f"), Some(31));
    assert_eq!(parse_long("010"), Some(8), "strtol base 0: a leading 0 is octal");
    assert_eq!(parse_long("0"), Some(0));
    let c = config("name='n'\nkernel='k'\nmemory = 0x100\nvcpus = \"2\"\nmaxmem = 0400\n").unwrap();
    assert_eq!((c.memory_mib, c.vcpus, c.maxmem_mib), (256, 2, 256));
    let e = parse("n.cfg", "memory = 128M\n").unwrap_err();
    assert_eq!(e.to_string(), "n.cfg:1: memory: a number must end at a blank, `,`, `]`, `;` or the end of the line");
}

#[test]
fn lists_across_lines_with_comments_and_trailing_comma() {
    let text = "disk = [\n  'a', # first\n\n  \"b\" ,\n  # between\n  'c',\n]\nvif=[]\nx = [ 1, 0x2, 'three', [ 'nested' ] ]\n";
    let s = parse("l.cfg", text).unwrap();
    assert_eq!(s[0].value, Value::List(vec![str_("a"), str_("b"), str_("c")]));
    assert_eq!(s[0].line, 1);
    assert_eq!((s[1].key.as_str(), &s[1].value, s[1].line), ("vif", &Value::List(vec![]), 8));
    assert_eq!(
        s[2].value,
        Value::List(vec![Value::Num("1".into()), Value::Num("0x2".into()), str_("three"), Value::List(vec![str_("nested")])])
    );
    let e = parse("l.cfg", "disk = [ 'a',\n 'b'\n").unwrap_err();
    assert_eq!(e.to_string(), "l.cfg:3: disk: list without closing `]`");
    let e = parse("l.cfg", "disk = [ 'a' 'b' ]\n").unwrap_err();
    assert_eq!(e.to_string(), "l.cfg:1: disk: expected `,` or `]` in list");
}

#[test]
fn separators_comments_and_append() {
    let s = parse("s.cfg", "a = 1; b = 'x' ;c=2 # three settings\n\n# only a comment\n  d\t=\t'y'\r\n").unwrap();
    let keys: Vec<(&str, usize)> = s.iter().map(|s| (s.key.as_str(), s.line)).collect();
    assert_eq!(keys, [("a", 1), ("b", 1), ("c", 1), ("d", 4)]);
    let s = parse("s.cfg", "disk = [ 'a,xvda' ]\ndisk += [ 'b,xvdb' ]\nextra = 'x'\nextra += 'y'\nnew += 'z'\n").unwrap();
    assert_eq!(s[1].op, Op::Append);
    let m = merged(&s);
    assert_eq!(m.len(), 3);
    assert_eq!(m[0].value, Value::List(vec![str_("a,xvda"), str_("b,xvdb")]));
    assert_eq!(m[1].value, Value::List(vec![str_("x"), str_("y")]));
    assert_eq!((m[2].op, &m[2].value), (Op::Set, &str_("z")));
    let c = config("name='n'\nkernel='k'\ndisk = [ '/a,raw,xvda,rw' ]\ndisk += [ '/b,raw,xvdb,ro' ]\n").unwrap();
    assert_eq!(c.disks.iter().map(|d| d.vdev.as_str()).collect::<Vec<_>>(), ["xvda", "xvdb"]);
}

#[test]
fn overrides_win_and_append() {
    let s = parse("g.cfg", CFG).unwrap();
    let o = parse_overrides(&["name=\"other\"".into(), "memory=64".into(), "cmdline=\"x\"".into(), "vif+=['']".into()]).unwrap();
    let c = domain_config("g.cfg", &s, &o).unwrap();
    assert_eq!((c.name.as_str(), c.memory_mib, c.maxmem_mib, c.cmdline.as_str()), ("other", 64, 256, "x"));
    assert_eq!(c.vifs.len(), 2);
    let e = parse_overrides(&["memory".into()]).unwrap_err();
    assert_eq!(e.to_string(), "<command line>:1: memory: expected `=` or `+=` after the key");
}

#[test]
fn errors_name_file_line_and_key() {
    let e = config("name = \"a\"\nmemory = \"lots\"\n").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:2: memory: expects a number");
    let e = config("name=\"a\"\nkernel=\"k\"\nvcpus = 0\n").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:3: vcpus: 0 is out of range 1..128");
    let e = parse("g.cfg", "name = \"a\nx").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:1: name: unterminated string");
    let e = config("name=\"a\"\nkernel=\"k\"\non_crash=\"explode\"").unwrap_err();
    assert_eq!(
        e.to_string(),
        "g.cfg:3: on_crash: `explode` is not destroy, restart, rename-restart, preserve, coredump-destroy or coredump-restart"
    );
    let e = config("name=\"a\"\nkernel=\"k\"\ndisk=[\"phy:/x,qqq,w\"]").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:3: disk: unknown virtual device `qqq`");
    let e = config("memory=1").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:1: name: missing");
    let e = config("name=\"a\"\nkernel=\"k\"\ndisk=[\"/x,raw,xvda,w,backendtype=tap\"]").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:3: disk: backendtype `tap` is not supported (phy or qdisk)");
    let e = config("name='a'\nkernel='k'\ntype='hvm'\n").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:3: type: only PV guests are supported, not `hvm`");
    let e = parse("g.cfg", "9lives = 1\n").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:1: expected `KEY = VALUE`");
    let e = parse("g.cfg", "name = 'a' 'b'\n").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:1: name: junk after the value");
    let e = parse("g.cfg", "name = \n").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:1: name: missing value");
    let e = parse("g.cfg", "name = bare\n").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:1: name: value is neither a number, a quoted string nor a [ list ]");
    let e = config("name='a'\nkernel='k'\nuuid='not-a-uuid'\n").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:3: uuid: `not-a-uuid` is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
}

#[test]
fn every_event_action() {
    for (word, action, json) in [
        ("destroy", OnEvent::Destroy, "destroy"),
        ("restart", OnEvent::Restart, "restart"),
        ("rename-restart", OnEvent::RenameRestart, "restart_rename"),
        ("preserve", OnEvent::Preserve, "preserve"),
        ("coredump-destroy", OnEvent::CoredumpDestroy, "coredump_destroy"),
        ("coredump-restart", OnEvent::CoredumpRestart, "coredump_restart"),
    ] {
        for key in ["on_poweroff", "on_reboot", "on_crash", "on_watchdog"] {
            let c = config(&format!("name='a'\nkernel='k'\n{key} = '{word}'\n")).unwrap();
            let got = match key {
                "on_poweroff" => c.on_poweroff,
                "on_reboot" => c.on_reboot,
                "on_crash" => c.on_crash,
                _ => c.on_watchdog,
            };
            assert_eq!(got, action, "{key} = {word}");
            assert_eq!(got.name(), word);
            let j: serde_json::Value = serde_json::from_str(&c.to_libxl_json()).unwrap();
            assert_eq!(j[key], json, "{key} = {word}");
        }
    }
    let c = config("name='a'\nkernel='k'\n").unwrap();
    assert_eq!((c.on_poweroff, c.on_reboot, c.on_crash, c.on_watchdog), (OnEvent::Destroy, OnEvent::Restart, OnEvent::Destroy, OnEvent::Destroy));
}

#[test]
fn pv_keys() {
    let c = config(
        "name='a'\nuuid='d8ffb4a4-9b8e-4e53-97c4-5b2d3a6c1e0f'\nkernel='/boot/vmlinuz'\ncmdline='console=hvc0'\nextra='ignored'\n\
         memory=256\nmaxmem=512\nvcpus=2\nmaxvcpus=4\ncpus='0-3,^1'\ncpus_soft=['0', '1-2']\n",
    )
    .unwrap();
    assert_eq!(c.uuid.map(|u| uuid_string(&u)).as_deref(), Some("d8ffb4a4-9b8e-4e53-97c4-5b2d3a6c1e0f"));
    assert_eq!(c.cmdline, "console=hvc0", "cmdline wins over extra and root");
    assert_eq!((c.memory_mib, c.maxmem_mib, c.vcpus, c.max_vcpus), (256, 512, 2, 4));
    assert_eq!(c.cpus, Some(CpuAffinity::All("0-3,^1".into())));
    assert_eq!(c.cpus_soft, Some(CpuAffinity::PerVcpu(vec!["0".into(), "1-2".into()])));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.cpus.as_ref().unwrap().for_vcpu(3), Some("0-3,^1"));
    assert_eq!(c.cpus_soft.as_ref().unwrap().for_vcpu(1), Some("1-2"));
    assert_eq!(c.cpus_soft.as_ref().unwrap().for_vcpu(2), None);
    let e = config("name='a'\nkernel='k'\ncpus='0-x'\n").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:3: cpus: bad cpu list `0-x`: invalid pcpu range: 0-x");
    let e = config("name='a'\nkernel='k'\ncpus=['1', '^all']\n").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:3: cpus: bad cpu list `^all`: can't combine \"^\" and \"all\"");
    assert_eq!(config("name='a'\nkernel='k'\ncpus=\"1\"\n").unwrap().cpus, Some(CpuAffinity::All("1".into())));
    assert_eq!(config("name='a'\nkernel='k'\ncpus='nodes:0,all'\n").unwrap().cpus, Some(CpuAffinity::All("nodes:0,all".into())));
}

#[test]
fn cpu_weight_and_cap() {
    let c = config("name='a'\nkernel='k'\ncpu_weight=512\ncap=50\n").unwrap();
    assert_eq!((c.cpu_weight, c.cap), (Some(512), Some(50)));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let c = config("name='a'\nkernel='k'\n").unwrap();
    assert_eq!((c.cpu_weight, c.cap), (None, None));
    let e = config("name='a'\nkernel='k'\ncpu_weight=70000\n").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:3: cpu_weight: 70000 is out of range 1..65535");
    let e = config("name='a'\nkernel='k'\ncpu_weight=0\n").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:3: cpu_weight: 0 is out of range 1..65535");
    // 100 per vCPU, as libxl checks at create.
    assert_eq!(config("name='a'\nkernel='k'\nvcpus=2\ncap=200\n").unwrap().cap, Some(200));
    let e = config("name='a'\nkernel='k'\nvcpus=2\ncap=201\n").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:4: cap: 201 is out of range 0..200 (100 per vCPU)");
    let e = config("name='a'\nkernel='k'\ncap='x'\n").unwrap_err();
    assert_eq!(e.to_string(), "g.cfg:3: cap: expects a number");
}

#[test]
fn bootloader_without_kernel_is_one_clear_line() {
    let e = config("name='a'\nbootloader = 'pygrub'\ndisk=['/x,raw,xvda,rw']\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "g.cfg:2: bootloader: `pygrub`: booting through a bootloader (pygrub) is not supported; set kernel= (and ramdisk=) instead"
    );
    let c = config("name='a'\nbootloader='pygrub'\nbootloader_args=['-q']\nkernel='/k'\n").unwrap();
    assert_eq!((c.kernel.as_str(), c.bootloader_args.as_slice()), ("/k", &["-q".to_string()][..]));
    assert!(c.warnings[0].contains("`pygrub` not run: booting kernel `/k` directly"), "{:?}", c.warnings);
}

#[test]
fn keys_for_other_guest_types_silent_unknown_keys_warn() {
    let c = config("name='a'\nkernel='k'\nvnc=1\nsdl=0\nserial='pty'\nlocaltime=1\nboot='c'\nacpi=1\nspicehost='x'\n").unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let c = config("name='a'\nkernel='k'\nfrobnicate = 1\npci = [ '01:00.0' ]\n").unwrap();
    assert_eq!(
        c.warnings,
        ["g.cfg:3: frobnicate: unknown key, ignored", "g.cfg:4: pci: not supported by this toolstack, ignored"]
    );
}

fn disk(spec: &str) -> Disk {
    parse_disk(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

/// Every example of xl-disk-configuration(5), written out: the two groups the
/// document says are equivalent, and the config-file line.
#[test]
fn xl_disk_configuration_examples() {
    let hda = Disk { target: "/dev/vg/guest-volume".into(), vdev: "hda".into(), ..Disk::default() };
    for spec in [
        "/dev/vg/guest-volume,,hda",
        "/dev/vg/guest-volume,raw,hda,rw",
        "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume",
        "raw:/dev/vg/guest-volume,hda,w",
    ] {
        assert_eq!(disk(spec), hda, "{spec}");
    }
    let cd = Disk { target: "/root/image.iso".into(), vdev: "hdc".into(), writable: false, cdrom: true, ..Disk::default() };
    for spec in [
        "/root/image.iso,,hdc,cdrom",
        "/root/image.iso,,hdc,,cdrom",
        "/root/image.iso,raw,hdc,devtype=cdrom",
        "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso",
        "raw:/root/image.iso,hdc:cdrom,ro",
    ] {
        assert_eq!(disk(spec), cd, "{spec}");
    }
    let c = config("name='a'\nkernel='k'\ndisk = [ '/dev/vg/guest-volume,,hda', '/root/image.iso,,hdc,cdrom' ]\n").unwrap();
    assert_eq!(c.disks, [hda, cd]);
}

#[test]
fn disk_parameters_and_deprecated_forms() {
    // `target=` takes the rest, commas and all.
    assert_eq!(disk("vdev=xvda, target=/images/a,b.img").target, "/images/a,b.img");
    assert_eq!(disk("xvda-ignored-target,raw,xvda").target, "xvda-ignored-target");
    // Access spellings.
    for (a, w) in [("r", false), ("ro", false), ("w", true), ("rw", true)] {
        assert_eq!(disk(&format!("/d,raw,xvda,{a}")).writable, w, "{a}");
        assert_eq!(disk(&format!("phy:/d,xvda,{a}")).writable, w, "phy: {a}");
        assert_eq!(disk(&format!("vdev=xvda,access={a},target=/d")).writable, w, "access={a}");
    }
    // Formats, positional and named; qcow2 parses (create refuses it).
    assert_eq!(disk("/d.qcow2,qcow2,xvda").format, "qcow2");
    assert_eq!(disk("format=vhd,vdev=xvda,target=/d").format, "vhd");
    assert_eq!(disk("qcow2:/d,xvda,w").format, "qcow2");
    // Deprecated prefixes: ignored, stacked, or giving a format or a script.
    for spec in ["phy:/dev/vg/v,xvda,w", "file:/dev/vg/v,xvda,w", "tap:aio:/dev/vg/v,xvda,w", "tap2:tapdisk:aio:/dev/vg/v,xvda,w", "ioemu:/dev/vg/v,xvda,w"] {
        let d = disk(spec);
        assert_eq!((d.target.as_str(), d.vdev.as_str(), d.format.as_str(), d.writable), ("/dev/vg/v", "xvda", "raw", true), "{spec}");
    }
    let d = disk("tap:qcow2:/i.qcow2,xvda,r");
    assert_eq!((d.format.as_str(), d.writable), ("qcow2", false));
    for p in ["iscsi", "nbd", "enbd", "drbd"] {
        assert_eq!(disk(&format!("{p}:resource,xvda,w")).script, Some(format!("block-{p}")));
    }
    // devtype, backendtype, script, backend, flags.
    let d = disk("/d,raw,xvda,rw,backendtype=phy,script=block-custom,backend=driver,direct-io-safe,no-discard,untrusted,specification=xen");
    assert_eq!((d.backend, d.backend_given), (DiskBackend::Phy, true));
    assert_eq!((d.script.as_deref(), d.backend_domain.as_deref()), (Some("block-custom"), Some("driver")));
    assert_eq!((d.direct_io_safe, d.discard, d.trusted, d.specification.as_deref()), (true, Some(false), Some(false), Some("xen")));
    assert_eq!(disk("/d,raw,xvda,backendtype=qdisk,discard,trusted").backend, DiskBackend::Qdisk);
    assert!(!disk("/d,raw,xvda").backend_given);
    assert!(disk("/d,raw,xvdb,devtype=disk").writable);
    // xend's empty CD-ROM.
    let d = disk(",hdc:cdrom,r");
    assert_eq!((d.target.as_str(), d.vdev.as_str(), d.format.as_str(), d.cdrom, d.writable), ("", "hdc", "empty", true, false));
    // Errors.
    for (spec, msg) in [
        ("/d,xvda,w", "unknown disk format `xvda` (raw, qcow, qcow2, vhd, qed; the old `target,vdev,access` form needs a prefix such as `phy:`)"),
        ("/d,raw,xvda,rx", "bad disk access `rx` (r, ro, w or rw)"),
        ("/d,raw,xvda,rw,extra", "too many positional parameters in disk spec `/d,raw,xvda,rw,extra`"),
        ("/d,raw", "disk spec `/d,raw` has no vdev"),
        ("vdev=xvda", "disk spec `vdev=xvda` has no target"),
        ("/d,raw,xvda,vdev=xvdb", "disk parameter `vdev` given twice in `/d,raw,xvda,vdev=xvdb`"),
        ("/d,raw,xvda,colour=blue", "unknown disk parameter `colour`"),
        ("/d,raw,xvda,devtype=floppy", "unknown devtype `floppy` (cdrom)"),
        ("/d,raw,hdc:tape", "unknown deprecated disk type `tape` (cdrom or disk)"),
        ("/d,raw,vda", "unknown virtual device `vda`"),
    ] {
        assert_eq!(parse_disk(spec).unwrap_err(), msg, "{spec}");
    }
}

/// Every example of xl-network-configuration(5), and each keyword it documents.
#[test]
fn xl_network_configuration_examples() {
    let (v, w) = parse_vif("mac=00:16:3E:74:3d:76,model=rtl8139,bridge=xenbr0").unwrap();
    assert_eq!((v.mac.as_deref(), v.model.as_deref(), v.bridge.as_deref()), (Some("00:16:3e:74:3d:76"), Some("rtl8139"), Some("xenbr0")));
    assert!(w.is_empty());
    assert_eq!(parse_vif("mac=00:16:3E:74:34:32").unwrap().0.mac.as_deref(), Some("00:16:3e:74:34:32"));
    assert_eq!(parse_vif("").unwrap().0, Vif::default());
    let c = config("name='a'\nkernel='k'\nvif = [ 'mac=00:16:3E:74:34:32', 'mac=00:16:3e:5f:48:e4,bridge=xenbr1' ]\n").unwrap();
    assert_eq!(c.vifs[1].bridge.as_deref(), Some("xenbr1"));
    let (v, w) = parse_vif(
        "bridge=br1,gatewaydev=eth0,type=vif,model=e1000,vifname=web0,script=vif-route,ip=10.0.0.5 10.0.0.6,backend=netdom,rate=1MB/s@20ms,devid=3,mtu=9000,untrusted",
    )
    .unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(v.gatewaydev.as_deref(), Some("eth0"));
    assert_eq!((v.nictype.as_deref(), v.vifname.as_deref(), v.script.as_deref()), (Some("vif"), Some("web0"), Some("vif-route")));
    assert_eq!((v.ip.as_deref(), v.backend_domain.as_deref()), (Some("10.0.0.5 10.0.0.6"), Some("netdom")));
    assert_eq!((v.rate, v.devid, v.mtu, v.trusted), (Some((20_000, 20_000)), Some(3), Some(9000), Some(false)));
    assert_eq!(parse_vif("netdev=eth1").unwrap().0.gatewaydev.as_deref(), Some("eth1"), "netdev: deprecated alias");
    // The document's rate examples.
    assert_eq!(parse_rate("10Mb/s"), Ok((62_500, 50_000)));
    assert_eq!(parse_rate("250KB/s"), Ok((12_500, 50_000)));
    assert_eq!(parse_rate("1MB/s@20ms"), Ok((20_000, 20_000)));
    assert_eq!(parse_rate("1GB/s@1s"), Ok((1_000_000_000, 1_000_000)));
    assert!(parse_rate("fast").is_err() && parse_rate("10Mb").is_err() && parse_rate("10Xb/s").is_err());
    // Unknown keywords are a warning (xl ignores them), bad values an error.
    let (_, w) = parse_vif("mac=00:16:3e:00:00:01,colour=blue").unwrap();
    assert_eq!(w, ["unknown vif parameter `colour`, ignored"]);
    assert_eq!(parse_vif("mac=00:16:3e:00:01").unwrap_err(), "bad vif mac `00:16:3e:00:01` (xx:xx:xx:xx:xx:xx)");
    assert_eq!(parse_vif("type=tap").unwrap_err(), "bad vif type `tap` (vif or ioemu)");
    let c = config("name='a'\nkernel='k'\nvif=['colour=blue']\n").unwrap();
    assert_eq!(c.warnings, ["g.cfg:3: vif: unknown vif parameter `colour`, ignored"]);
}

/// `xl create -n` prints libxl's `libxl_domain_config` JSON.
#[test]
fn dry_run_json_has_libxl_shape() {
    let c = config(
        "name = 'example.pvlinux'\nkernel = '/boot/vmlinuz'\nextra = 'root=/dev/xvda1'\nmemory = 128\nvcpus = 2\n\
         vif = [ '' ]\ndisk = [ '/dev/vg/guest-volume,raw,xvda,rw' ]\nuuid='d8ffb4a4-9b8e-4e53-97c4-5b2d3a6c1e0f'\n",
    )
    .unwrap();
    let j: serde_json::Value = serde_json::from_str(&c.to_libxl_json()).unwrap();
    assert_eq!(j["c_info"]["type"], "pv");
    assert_eq!(j["c_info"]["name"], "example.pvlinux");
    assert_eq!(j["c_info"]["uuid"], "d8ffb4a4-9b8e-4e53-97c4-5b2d3a6c1e0f");
    assert_eq!(j["b_info"]["max_vcpus"], 2);
    assert_eq!(j["b_info"]["avail_vcpus"], serde_json::json!([0, 1]));
    assert_eq!((j["b_info"]["max_memkb"].as_u64(), j["b_info"]["target_memkb"].as_u64()), (Some(131072), Some(131072)));
    assert_eq!((&j["b_info"]["kernel"], &j["b_info"]["cmdline"]), (&serde_json::json!("/boot/vmlinuz"), &serde_json::json!("root=/dev/xvda1")));
    assert!(j["b_info"]["type.pv"].is_object());
    assert_eq!(j["disks"][0]["pdev_path"], "/dev/vg/guest-volume");
    assert_eq!((&j["disks"][0]["vdev"], &j["disks"][0]["format"], &j["disks"][0]["readwrite"]), (&"xvda".into(), &"raw".into(), &1.into()));
    assert_eq!(j["nics"][0]["devid"], 0);
    assert_eq!((&j["on_poweroff"], &j["on_reboot"], &j["on_crash"]), (&"destroy".into(), &"restart".into(), &"destroy".into()));
    assert!(j.get("warnings").is_none());
}

/// Every example config Debian's `xen-utils-common` ships (`/etc/xen/xlexample.*`):
/// the PV ones must give a domain configuration, the others the one-line "only PV"
/// error. xtask's host tier fetches the package and sets `XEN_RS_XLEXAMPLES`.
#[test]
fn debian_shipped_examples() {
    let Some(dir) = std::env::var_os("XEN_RS_XLEXAMPLES") else {
        eprintln!("XEN_RS_XLEXAMPLES not set: Debian's example configs not checked");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("xlexample.")))
        .collect();
    files.sort();
    assert!(files.iter().any(|p| p.ends_with("xlexample.pvlinux")), "no xlexample.pvlinux in {}", dir.display());
    for path in files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let settings = parse(&name, &text).unwrap_or_else(|e| panic!("{e}"));
        let ty = settings.iter().rev().find(|s| s.key == "type").and_then(|s| s.value.atom().map(str::to_string));
        let r = domain_config(&name, &settings, &[]);
        match ty.as_deref() {
            None | Some("pv") => {
                let c = r.unwrap_or_else(|e| panic!("{e}"));
                assert!(c.warnings.is_empty(), "{name}: {:?}", c.warnings);
                assert!(!c.disks.is_empty() && !c.vifs.is_empty(), "{name}");
                serde_json::from_str::<serde_json::Value>(&c.to_libxl_json()).unwrap();
                if name.ends_with("xlexample.pvlinux") {
                    assert_eq!((c.name.as_str(), c.kernel.as_str(), c.cmdline.as_str()), ("example.pvlinux", "/boot/vmlinuz", "root=/dev/xvda1"));
                    assert_eq!((c.memory_mib, c.vcpus), (128, 2));
                    assert_eq!(c.disks[0], Disk { target: "/dev/vg/guest-volume".into(), vdev: "xvda".into(), ..Disk::default() });
                    assert_eq!(c.vifs, [Vif::default()]);
                }
            }
            Some(other) => {
                let e = r.unwrap_err().to_string();
                assert!(e.ends_with(&format!("type: only PV guests are supported, not `{other}`")), "{e}");
            }
        }
    }
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
    fn parser_never_panics(text in "[ -~\n\t]{0,200}") {
        if let Ok(s) = parse("f", &text) {
            let _ = domain_config("f", &s, &[]).map(|c| c.to_libxl_json());
        } else if let Err(e) = parse("f", &text) {
            prop_assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn disk_and_vif_specs_never_panic(spec in "[a-z0-9:,=/ .@-]{0,60}") {
        let _ = parse_disk(&spec);
        let _ = parse_vif(&spec);
    }

    #[test]
    fn strings_and_numbers_round_trip(key in "[a-z_][a-z0-9_]{0,10}", s in "[ -!#-&(-\\[\\]-~]{0,30}", n in any::<u32>()) {
        let text = format!("{key} = \"{s}\"\n{key} = {n}\n{key} = [ \"{s}\",\n '{s}' ]\n{key} = {n:#x}\n");
        let p = parse("f", &text).unwrap();
        prop_assert_eq!(&p[0].value, &Value::Str(s.clone()));
        prop_assert_eq!(parse_long(p[1].value.atom().unwrap()), Some(i64::from(n)));
        prop_assert_eq!(&p[2].value, &Value::List(vec![Value::Str(s.clone()), Value::Str(s)]));
        prop_assert_eq!(parse_long(p[3].value.atom().unwrap()), Some(i64::from(n)));
    }
}
