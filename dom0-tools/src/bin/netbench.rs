//! `netbench`: UDP throughput between a domU and dom0, for `cargo xtask bench net`.
//!
//! - `netbench send --to IP:PORT [--seconds S] [--size B]`: sends B-byte datagrams as fast
//!   as the socket takes them for S seconds; prints what it sent.
//! - `netbench recv --port P --label L --metric M [--wait S]`: counts datagrams from the
//!   first one until 2 s pass without any (or S seconds without a first one); prints
//!   `BENCH L M_pps X` and `BENCH L M_mbps Y` (UDP payload bits): the receiver's count is
//!   the figure, since a flood sender outruns any path.
#![forbid(unsafe_code)]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// The receive side's silence that ends a run.
const IDLE: Duration = Duration::from_secs(2);

fn value<T: std::str::FromStr>(args: &[String], key: &str, default: Option<T>) -> Result<T, String> {
    match args.iter().position(|a| a == key) {
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{key}: missing or bad value")),
        None => default.ok_or_else(|| format!("{key} is required")),
    }
}

fn send(args: &[String]) -> Result<(), String> {
    let to: String = value(args, "--to", None)?;
    let secs: u64 = value(args, "--seconds", Some(10))?;
    let size: usize = value(args, "--size", Some(1400))?;
    if !(1..=65507).contains(&size) {
        return Err(format!("--size {size}: 1..65507"));
    }
    let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("bind: {e}"))?;
    sock.connect(&to).map_err(|e| format!("{to}: {e}"))?;
    let mut buf = vec![0u8; size];
    let (start, mut sent, mut dropped) = (Instant::now(), 0u64, 0u64);
    while start.elapsed() < Duration::from_secs(secs) {
        buf[..8].copy_from_slice(&sent.to_le_bytes());
        match sock.send(&buf) {
            Ok(_) => sent += 1,
            // ENOBUFS/ECONNREFUSED under a flood: count and go on.
            Err(_) => dropped += 1,
        }
    }
    let t = start.elapsed().as_secs_f64();
    println!("netbench: sent {sent} datagrams of {size} bytes in {t:.1} s ({:.0}/s), {dropped} refused", sent as f64 / t);
    Ok(())
}

fn recv(args: &[String]) -> Result<(), String> {
    let port: u16 = value(args, "--port", None)?;
    let label: String = value(args, "--label", None)?;
    let metric: String = value(args, "--metric", None)?;
    let wait: u64 = value(args, "--wait", Some(120))?;
    let sock = UdpSocket::bind(("0.0.0.0", port)).map_err(|e| format!("bind :{port}: {e}"))?;
    let mut buf = vec![0u8; 65536];
    sock.set_read_timeout(Some(Duration::from_secs(wait))).map_err(|e| e.to_string())?;
    let first = sock.recv(&mut buf).map_err(|e| format!("no datagram within {wait} s: {e}"))?;
    let start = Instant::now();
    let (mut packets, mut bytes, mut last) = (1u64, first as u64, start);
    sock.set_read_timeout(Some(IDLE)).map_err(|e| e.to_string())?;
    while let Ok(n) = sock.recv(&mut buf) {
        packets += 1;
        bytes += n as u64;
        last = Instant::now();
    }
    // From the first datagram to the last one.
    let t = last.duration_since(start).as_secs_f64().max(1e-3);
    println!("BENCH {label} {metric}_pps {:.0}", packets as f64 / t);
    println!("BENCH {label} {metric}_mbps {:.1}", bytes as f64 * 8.0 / t / 1e6);
    println!("netbench: {packets} datagrams, {bytes} bytes in {t:.2} s");
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("send") => send(&args[1..]),
        Some("recv") => recv(&args[1..]),
        _ => Err("usage: netbench send --to IP:PORT [--seconds S] [--size B] | recv --port P --label L --metric M [--wait S]".into()),
    };
    if let Err(e) = r {
        eprintln!("netbench: {e}");
        std::process::exit(1);
    }
}
