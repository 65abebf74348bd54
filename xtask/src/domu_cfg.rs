//! The xl.cfg files of the dom0 tier's and benchmarks' domUs, written from one shape.

use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// Our Rust PV kernel (`/guests/pv-guest`).
    PvGuest,
    /// Debian's Linux (`/guests/vmlinux`, unpacked by xtask) with the busybox initramfs.
    Linux,
    /// Debian's Linux as users have it: the stock compressed bzImage
    /// (`/guests/vmlinuz`, Debian's `/boot/vmlinuz-*`), with the busybox initramfs.
    LinuxStock,
}

/// One domU's configuration.
#[derive(Clone, Debug)]
pub struct DomU {
    name: String,
    kernel: Kernel,
    extra: String,
    memory_mib: u32,
    vcpus: u32,
    on_poweroff: &'static str,
    on_crash: &'static str,
    disks: Vec<String>,
    vifs: Vec<String>,
    /// Lists in single quotes, as Xen's shipped examples (`/etc/xen/xlexample.pvlinux`).
    single_quotes: bool,
}

impl DomU {
    /// pv-guest with `extra` as its command line: 32 MiB, destroyed at power-off, kept
    /// after a crash (for diagnostics).
    pub fn pv_guest(name: &str, extra: &str) -> DomU {
        DomU {
            name: name.into(),
            kernel: Kernel::PvGuest,
            extra: extra.into(),
            memory_mib: 32,
            vcpus: 1,
            on_poweroff: "destroy",
            on_crash: "preserve",
            disks: Vec::new(),
            vifs: Vec::new(),
            single_quotes: false,
        }
    }

    /// Debian's Linux on the hvc0 console with `extra` added to its command line.
    pub fn linux(name: &str, extra: &str) -> DomU {
        let cmdline = if extra.is_empty() { "console=hvc0 loglevel=4".to_string() } else { format!("console=hvc0 loglevel=4 {extra}") };
        DomU { kernel: Kernel::Linux, memory_mib: 128, extra: cmdline, ..DomU::pv_guest(name, "") }
    }

    /// The stock compressed kernel instead of the unpacked ELF, and the list style of
    /// Xen's shipped `xlexample.pvlinux` (`disk = [ '...,raw,xvda,rw' ]`, `vif = [ '' ]`).
    pub fn users_style(mut self) -> DomU {
        self.kernel = Kernel::LinuxStock;
        self.single_quotes = true;
        self
    }

    pub fn memory(mut self, mib: u32) -> DomU {
        self.memory_mib = mib;
        self
    }

    pub fn vcpus(mut self, n: u32) -> DomU {
        self.vcpus = n;
        self
    }

    /// Kept after power-off (the test looks at it, then destroys it).
    pub fn preserved(mut self) -> DomU {
        self.on_poweroff = "preserve";
        self
    }

    /// Destroyed after a crash too (benchmarks).
    pub fn crash_destroys(mut self) -> DomU {
        self.on_crash = "destroy";
        self
    }

    pub fn disk(mut self, spec: &str) -> DomU {
        self.disks.push(spec.into());
        self
    }

    pub fn vif(mut self, spec: &str) -> DomU {
        self.vifs.push(spec.into());
        self
    }

    /// The xl.cfg text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let q = if self.single_quotes { '\'' } else { '"' };
        let list = |items: &[String]| items.iter().map(|i| format!("{q}{i}{q}")).collect::<Vec<_>>().join(", ");
        let _ = writeln!(s, "name = \"{}\"\ntype = \"pv\"", self.name);
        match self.kernel {
            Kernel::PvGuest => s.push_str("kernel = \"/guests/pv-guest\"\n"),
            Kernel::Linux => s.push_str("kernel = \"/guests/vmlinux\"\nramdisk = \"/guests/domu.cpio\"\n"),
            Kernel::LinuxStock => s.push_str("kernel = \"/guests/vmlinuz\"\nramdisk = \"/guests/domu.cpio\"\n"),
        }
        let _ = writeln!(s, "extra = \"{}\"\nmemory = {}\nvcpus = {}", self.extra, self.memory_mib, self.vcpus);
        let _ = writeln!(s, "on_poweroff = \"{}\"", self.on_poweroff);
        if self.kernel != Kernel::PvGuest {
            s.push_str("on_reboot = \"destroy\"\n");
        }
        let _ = writeln!(s, "on_crash = \"{}\"", self.on_crash);
        if !self.disks.is_empty() {
            let _ = writeln!(s, "disk = [ {} ]", list(&self.disks));
        }
        if !self.vifs.is_empty() {
            let _ = writeln!(s, "vif = [ {} ]", list(&self.vifs));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_xl_reads() {
        let c = DomU::linux("l", "net=1").vcpus(2).disk("file:/tmp/a,xvda,w").vif("mac=00:16:3e:00:00:01").render();
        assert_eq!(
            c,
            "name = \"l\"\ntype = \"pv\"\nkernel = \"/guests/vmlinux\"\nramdisk = \"/guests/domu.cpio\"\n\
extra = \"console=hvc0 loglevel=4 net=1\"\nmemory = 128\nvcpus = 2\non_poweroff = \"destroy\"\n\
on_reboot = \"destroy\"\non_crash = \"preserve\"\ndisk = [ \"file:/tmp/a,xvda,w\" ]\n\
vif = [ \"mac=00:16:3e:00:00:01\" ]\n"
        );
        let p = DomU::pv_guest("p", "tests=all").preserved().render();
        assert!(p.contains("kernel = \"/guests/pv-guest\"\n") && p.contains("on_poweroff = \"preserve\"\n") && !p.contains("ramdisk"));
        let u = DomU::linux("u", "").users_style().disk("/tmp/u.img,raw,xvda,rw").vif("").render();
        assert!(u.contains("kernel = \"/guests/vmlinuz\"\n") && u.contains("on_reboot = \"destroy\"\n"), "{u}");
        assert!(u.contains("disk = [ '/tmp/u.img,raw,xvda,rw' ]\n") && u.contains("vif = [ '' ]\n"), "{u}");
    }
}
