//! `cargo xtask run` as a user meets it: started on a terminal (a pty, from util-linux's
//! `script`, which Debian always has), it boots xen-core with Linux dom0 and hands over a
//! shell. The check types at that shell what the README tells users to try: `xl list`,
//! `xl create` of the shipped pv-guest config (its self-tests must report), `xl destroy`,
//! `poweroff -f`, and the command must end with status 0.

use crate::error::{Context, Error, Result};
use crate::results::Tally;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The interactive dom0's banner ends with this line; the shell starts after it.
const READY: &str = "poweroff -f  ends the session";
/// Under TCG the dom0 shell comes up in about a minute on an idle machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(600);

/// One exchange: what is typed (Enter is `\r`, as a terminal sends it), and the text the
/// shell's output must then show. Each expected text is computed by the guest's shell
/// from what was typed, so the echo of the typed line does not match it.
struct Step {
    name: &'static str,
    typed: &'static str,
    expect: &'static str,
    timeout: Duration,
}

const STEPS: &[Step] = &[
    Step { name: "run-pty: typed command runs in dom0's shell", typed: "echo PTY-$((6*7))\r", expect: "PTY-42", timeout: Duration::from_secs(60) },
    Step {
        name: "run-pty: xl list shows Domain-0",
        typed: "xl list | grep -c '^Domain-0 ' | sed 's/^/PTY-DOM0-/'\r",
        expect: "PTY-DOM0-1",
        timeout: Duration::from_secs(60),
    },
    Step {
        name: "run-pty: xl create of the shipped pv-guest config, its self-tests pass",
        typed: "xl create /etc/xen/pv-guest.cfg; L=/var/log/xen/console/guest-pv-guest.log; i=0; while ! grep -q ' passed, ' $L 2>/dev/null && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; grep -c ' passed, 0 failed' $L | sed 's/^/PTY-SELFTESTS-/'\r",
        expect: "PTY-SELFTESTS-1",
        timeout: Duration::from_secs(240),
    },
    Step {
        name: "run-pty: xl destroy removes the domU",
        typed: "xl destroy pv-guest; xl list | grep -c '^pv-guest ' | sed 's/^/PTY-LEFT-/'\r",
        expect: "PTY-LEFT-0",
        timeout: Duration::from_secs(60),
    },
];

/// Output of the child so far, filled by a reader thread.
#[derive(Clone, Default)]
struct Screen(Arc<Mutex<Vec<u8>>>);

impl Screen {
    fn text_from(&self, from: usize) -> String {
        let b = self.0.lock().map(|v| v.clone()).unwrap_or_default();
        String::from_utf8_lossy(b.get(from..).unwrap_or_default()).into_owned()
    }
    fn len(&self) -> usize {
        self.0.lock().map(|v| v.len()).unwrap_or(0)
    }
}

fn wait_for(screen: &Screen, from: usize, what: &str, timeout: Duration, child: &mut Child) -> Result<bool> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if screen.text_from(from).contains(what) {
            return Ok(true);
        }
        if child.try_wait()?.is_some() {
            return Ok(screen.text_from(from).contains(what));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(false)
}

fn type_line(input: &mut ChildStdin, s: &str) -> Result<()> {
    input.write_all(s.as_bytes())?;
    input.flush()?;
    Ok(())
}

pub fn checks(root: &Path) -> Result<Tally> {
    let mut t = Tally::default();
    let exe = std::env::current_exe()?;
    let log_path = root.join("target/logs/run-pty.log");
    std::fs::create_dir_all(log_path.parent().unwrap_or(root))?;
    // script -q: no banner; -f: flush at once; -e: its status is the command's; -c: the command.
    let mut child = Command::new("script")
        .args(["-qfec", &format!("{} run", exe.display()), "/dev/null"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context(|| "starting `script` (util-linux) to give `xtask run` a terminal".to_string())?;
    let screen = Screen::default();
    let mut out = child.stdout.take().ok_or_else(|| Error::new("script: no stdout"))?;
    let mut input = child.stdin.take().ok_or_else(|| Error::new("script: no stdin"))?;
    let fill = screen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut v) = fill.0.lock() {
                v.extend_from_slice(&buf[..n]);
            }
        }
    });
    let result = (|| -> Result<()> {
        let up = wait_for(&screen, 0, READY, BOOT_TIMEOUT, &mut child)?;
        t.record("run-pty: `xtask run` on a terminal reaches dom0's shell", up, "no shell banner");
        if !up {
            return Ok(());
        }
        // The shell prints its prompt after the banner; give it a moment to read input.
        std::thread::sleep(Duration::from_secs(2));
        for s in STEPS {
            let from = screen.len();
            type_line(&mut input, s.typed)?;
            let ok = wait_for(&screen, from, s.expect, s.timeout, &mut child)?;
            t.record(s.name, ok, &format!("no `{}` in {} s", s.expect, s.timeout.as_secs()));
        }
        type_line(&mut input, "poweroff -f\r")?;
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break Some(st);
            }
            if start.elapsed() > Duration::from_secs(120) {
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        t.record(
            "run-pty: poweroff -f ends `xtask run` with status 0",
            status.is_some_and(|s| s.success()),
            &format!("{status:?}"),
        );
        Ok(())
    })();
    if child.try_wait()?.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        // `script` leaves its child (and QEMU) behind when killed: stop that QEMU too.
        let _ = Command::new("pkill").args(["-f", "dom0-interactive.cpio"]).status();
    }
    drop(input);
    let _ = reader.join();
    std::fs::write(&log_path, screen.text_from(0))?;
    println!("  log: {}", log_path.display());
    result?;
    Ok(t)
}
