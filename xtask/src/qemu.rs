//! The QEMU harness: one TCG machine per run, serial log to a file, `isa-debug-exit` for
//! status, a hard timeout, and early stop once the log shows a line we wait for.

use crate::deps::QEMU;
use crate::error::{Context, Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// QEMU's exit status when a guest writes `code` to the debug-exit port.
pub const fn debug_exit_status(code: u32) -> i32 {
    ((code << 1) | 1) as i32
}
/// The codes xen-core writes (see `arch/x86_64/qemu.rs`).
pub const EXIT_SUCCESS: i32 = debug_exit_status(0x10);
pub const EXIT_FAILURE: i32 = debug_exit_status(0x11);

#[derive(Debug, Clone)]
pub struct Machine {
    /// Multiboot kernel for `-kernel`.
    pub kernel: PathBuf,
    pub append: String,
    /// Modules, each `path` plus optional arguments; QEMU splits `-initrd` on commas.
    pub modules: Vec<(PathBuf, String)>,
    pub memory_mib: u32,
    pub smp: u32,
}

impl Machine {
    fn command(&self) -> Result<Command> {
        let mut c = Command::new(QEMU);
        // No SVM: on an SVM host Xen 4.17 loads a PV vCPU's FS and GS bases with VMLOAD
        // from its host VMCB (`svm_load_segs`), and under TCG its Linux dom0 now and then
        // started a process whose first TLS read (`%fs:-0x90`) found another FS base
        // (busybox segfaults at one instruction in 3 of about 30 full runs, never on
        // xen-core, which does not use SVM). Without it Xen writes them as on Intel.
        c.args(["-machine", "q35", "-cpu", "max,-smap,-svm", "-accel", "tcg"])
            .args(["-m", &self.memory_mib.to_string(), "-smp", &self.smp.to_string()])
            .args(["-display", "none", "-no-reboot", "-monitor", "none"])
            .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
            .arg("-kernel")
            .arg(&self.kernel)
            .args(["-append", &self.append]);
        if !self.modules.is_empty() {
            let mut list = Vec::new();
            for (path, args) in &self.modules {
                let p = path.to_string_lossy();
                if p.contains(',') || args.contains(',') {
                    return Err(Error::new(format!("module `{p} {args}` has a comma, which QEMU's -initrd cannot pass")));
                }
                list.push(if args.is_empty() { p.into_owned() } else { format!("{p} {args}") });
            }
            c.arg("-initrd").arg(list.join(","));
        }
        Ok(c)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// QEMU ended by itself with this status.
    Status(i32),
    /// We stopped QEMU because the log showed this `stop_on` line.
    Stopped(String),
    TimedOut,
}

#[derive(Debug)]
pub struct Outcome {
    pub exit: Exit,
    pub log: String,
    pub log_path: PathBuf,
    /// For each `marks` entry: time from QEMU start until a log line contained it.
    pub marks: Vec<Option<Duration>>,
    pub elapsed: Duration,
}

/// How often a long QEMU run says where it is.
const PROGRESS_EVERY: Duration = Duration::from_secs(20);

/// `xtask: dom0 2m40s: 57 checks (56 passed, 1 failed), last xl-create-linux`: the
/// run (its log's name), the time since QEMU started and the `TEST` lines so far.
fn progress_line(run: &str, elapsed: Duration, log: &str) -> String {
    let (mut passed, mut failed, mut last) = (0, 0, None);
    for line in log.lines() {
        let Some(rest) = line.trim_start_matches(|c: char| c != 'T').strip_prefix("TEST ") else { continue };
        let mut words = rest.split_whitespace();
        let (Some(name), Some(verdict)) = (words.next(), words.next()) else { continue };
        match verdict {
            "PASS" => passed += 1,
            "FAIL" => failed += 1,
            _ => continue,
        }
        last = Some(name);
    }
    let secs = elapsed.as_secs();
    let mut s = format!("xtask: {run} {}m{:02}s: {} checks ({passed} passed, {failed} failed)", secs / 60, secs % 60, passed + failed);
    if let Some(l) = last {
        s.push_str(&format!(", last {l}"));
    }
    s
}

/// Runs `m` with the serial console logged to `log_path`, until QEMU exits, a `stop_on`
/// text shows up in the log, or `timeout` passes.
pub fn run(m: &Machine, log_path: &Path, timeout: Duration, stop_on: &[&str], marks: &[&str]) -> Result<Outcome> {
    run_typing(m, log_path, timeout, stop_on, marks, &[])
}

/// As [`run`], and types into the serial line: once the log shows `typed[i].0` (in
/// order), `typed[i].1` is sent as if typed on the terminal.
pub fn run_typing(m: &Machine, log_path: &Path, timeout: Duration, stop_on: &[&str], marks: &[&str], typed: &[(&str, &str)]) -> Result<Outcome> {
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(log_path);
    let mut c = m.command()?;
    let fifo = log_path.with_extension("input");
    if typed.is_empty() {
        c.arg("-serial").arg(format!("file:{}", log_path.display()));
    } else {
        // QEMU reads the serial line's input from a FIFO we write when the log asks.
        let _ = std::fs::remove_file(&fifo);
        crate::cmd::run(Command::new("mkfifo").arg(&fifo))?;
        c.args(["-chardev", &format!("file,id=serial0,path={},input-path={}", log_path.display(), fifo.display())]);
        c.args(["-serial", "chardev:serial0"]);
    }
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = c.spawn().context(|| format!("starting {QEMU}"))?;
    // Opening the FIFO for writing waits for QEMU to open it for reading.
    let mut input = if typed.is_empty() { None } else { Some(std::fs::OpenOptions::new().write(true).open(&fifo)?) };
    let mut next_typed = 0;
    let mut mark_times = vec![None; marks.len()];
    let run_name = log_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut next_progress = PROGRESS_EVERY;
    let exit = loop {
        let log = std::fs::read(log_path).unwrap_or_default();
        let text = String::from_utf8_lossy(&log);
        if start.elapsed() >= next_progress {
            eprintln!("{}", progress_line(&run_name, start.elapsed(), &text));
            next_progress += PROGRESS_EVERY;
        }
        if let (Some(f), Some((after, what))) = (input.as_mut(), typed.get(next_typed)) {
            if text.contains(after) {
                use std::io::Write;
                f.write_all(what.as_bytes())?;
                f.flush()?;
                next_typed += 1;
            }
        }
        for (i, mark) in marks.iter().enumerate() {
            if mark_times[i].is_none() && text.contains(mark) {
                mark_times[i] = Some(start.elapsed());
            }
        }
        if let Some(s) = stop_on.iter().find(|s| text.contains(*s)) {
            let _ = child.kill();
            let _ = child.wait();
            break Exit::Stopped((*s).to_string());
        }
        if let Some(status) = child.try_wait()? {
            break Exit::Status(status.code().unwrap_or(-1));
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break Exit::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let log = String::from_utf8_lossy(&std::fs::read(log_path).unwrap_or_default()).replace('\r', "");
    if !stderr.trim().is_empty() && log.is_empty() {
        return Err(Error::new(format!("{QEMU} printed: {}", stderr.trim())));
    }
    Ok(Outcome { exit, log, log_path: log_path.to_path_buf(), marks: mark_times, elapsed })
}

/// Runs `m` with the serial console on this terminal (for `cargo xtask run`).
pub fn run_interactive(m: &Machine, timeout: Duration) -> Result<i32> {
    let mut c = m.command()?;
    c.args(["-serial", "stdio"]);
    let mut child = c.spawn().context(|| format!("starting {QEMU}"))?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.code().unwrap_or(-1));
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::new(format!("QEMU still running after {}s: stopped it", timeout.as_secs())));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod progress_tests {
    use super::*;

    #[test]
    fn progress_counts_test_lines() {
        let log = "boot\nTEST xenstored-socket PASS\n(d1) TEST domu FAIL no marker\nTEST x-create PASS \nnoise TEST\n";
        assert_eq!(
            progress_line("dom0", Duration::from_secs(125), log),
            "xtask: dom0 2m05s: 3 checks (2 passed, 1 failed), last x-create"
        );
        assert_eq!(progress_line("boot", Duration::from_secs(20), ""), "xtask: boot 0m20s: 0 checks (0 passed, 0 failed)");
    }
}
