//! Running programs with errors that name the command.

use crate::error::{Error, Result};
use std::path::Path;
use std::process::Command;

fn describe(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `c` with inherited stdio; a non-zero exit is an error.
pub fn run(c: &mut Command) -> Result<()> {
    let status = c.status().map_err(|e| Error::new(format!("cannot run `{}`: {e}", describe(c))))?;
    if !status.success() {
        return Err(Error::new(format!("`{}` failed ({status})", describe(c))));
    }
    Ok(())
}

/// Runs `c` and returns its stdout; a non-zero exit is an error carrying stderr.
pub fn output(c: &mut Command) -> Result<String> {
    let out = c.output().map_err(|e| Error::new(format!("cannot run `{}`: {e}", describe(c))))?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "`{}` failed ({}): {}",
            describe(c),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn cargo(root: &Path) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root);
    c
}
