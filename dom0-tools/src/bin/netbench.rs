//! `netbench`: UDP throughput between a domU and dom0, for `cargo xtask bench net`.
//!
//! - `netbench send --to IP:PORT [--seconds S] [--size B]`: sends B-byte datagrams as fast
//!   as the socket takes them for S seconds; prints what it sent.
//! - `netbench recv --port P --label L --metric M [--wait S]`: counts datagrams from the
//!   first one until 2 s pass without any (or S seconds without a first one); prints
//!   `BENCH L M_pps X` and `BENCH L M_mbps Y` (UDP payload bits): the receiver's count is
//!   the figure, since a flood sender outruns any path.
//! - `netbench tcp-send --to IP:PORT --bytes N [--seed S]` / `netbench tcp-recv --port P
//!   --bytes N [--seed S] [--wait S]`: a TCP stream of N pseudo-random bytes; the
//!   receiver checks every byte against the same generator (exit 1 at the first wrong
//!   one). Over a PV vif this exercises checksum offload and segmentation both ways.
//!   With `--label L --metric M` the receiver also prints `BENCH L M_mbps X`.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
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

/// The byte stream both TCP ends generate: xorshift64 words, little-endian.
struct Stream {
    x: u64,
}

impl Stream {
    fn new(seed: u64) -> Stream {
        Stream { x: seed | 1 }
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            chunk.copy_from_slice(&self.x.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// Chunk size of the TCP stream (a multiple of 8, so both ends' words line up).
const TCP_CHUNK: usize = 64 * 1024;

fn tcp_send(args: &[String]) -> Result<(), String> {
    let to: String = value(args, "--to", None)?;
    let total: u64 = value(args, "--bytes", None)?;
    let seed: u64 = value(args, "--seed", Some(1))?;
    let mut sock = TcpStream::connect(&to).map_err(|e| format!("{to}: {e}"))?;
    let (mut gen, mut buf, mut sent) = (Stream::new(seed), vec![0u8; TCP_CHUNK], 0u64);
    let start = Instant::now();
    while sent < total {
        let n = (total - sent).min(TCP_CHUNK as u64) as usize;
        gen.fill(&mut buf[..n]);
        sock.write_all(&buf[..n]).map_err(|e| format!("{to}: after {sent} bytes: {e}"))?;
        sent += n as u64;
    }
    sock.shutdown(std::net::Shutdown::Write).map_err(|e| e.to_string())?;
    let t = start.elapsed().as_secs_f64();
    println!("netbench: tcp sent {sent} bytes in {t:.2} s ({:.1} Mbit/s)", sent as f64 * 8.0 / t / 1e6);
    Ok(())
}

fn tcp_recv(args: &[String]) -> Result<(), String> {
    let port: u16 = value(args, "--port", None)?;
    let total: u64 = value(args, "--bytes", None)?;
    let seed: u64 = value(args, "--seed", Some(1))?;
    let wait: u64 = value(args, "--wait", Some(120))?;
    let bench: Option<(String, String)> = match (value::<String>(args, "--label", None), value::<String>(args, "--metric", None)) {
        (Ok(l), Ok(m)) => Some((l, m)),
        _ => None,
    };
    let listener = TcpListener::bind(("0.0.0.0", port)).map_err(|e| format!("bind :{port}: {e}"))?;
    // accept() has no timeout: poll a non-blocking listener until `wait` runs out.
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(wait);
    let mut sock = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("no connection on :{port} within {wait} s: {e}")),
        }
    };
    sock.set_nonblocking(false).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let (mut gen, mut want) = (Stream::new(seed), vec![0u8; TCP_CHUNK + 8]);
    // Received bytes not checked yet (the generator runs in 8-byte words).
    let (mut pending, mut got, mut seen) = (Vec::with_capacity(TCP_CHUNK + 8), vec![0u8; TCP_CHUNK], 0u64);
    let start = Instant::now();
    loop {
        let n = sock.read(&mut got).map_err(|e| format!("after {} bytes: {e}", seen + pending.len() as u64))?;
        pending.extend_from_slice(&got[..n]);
        // At the end the last word may be partial (a total not a multiple of 8).
        let whole = if n == 0 { pending.len() } else { pending.len() / 8 * 8 };
        gen.fill(&mut want[..whole]);
        if let Some(i) = (0..whole).find(|&i| want[i] != pending[i]) {
            return Err(format!("byte {} differs: got {:#04x}, sent {:#04x}", seen + i as u64, pending[i], want[i]));
        }
        pending.drain(..whole);
        seen += whole as u64;
        if n == 0 {
            break;
        }
    }
    finish_tcp(seen, total, start, bench)
}

fn finish_tcp(seen: u64, total: u64, start: Instant, bench: Option<(String, String)>) -> Result<(), String> {
    if seen != total {
        return Err(format!("stream ended after {seen} of {total} bytes"));
    }
    let t = start.elapsed().as_secs_f64();
    let mbps = seen as f64 * 8.0 / t / 1e6;
    println!("netbench: tcp received {seen} bytes, every byte as sent ({mbps:.1} Mbit/s)");
    if let Some((label, metric)) = bench {
        println!("BENCH {label} {metric}_mbps {mbps:.1}");
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("send") => send(&args[1..]),
        Some("recv") => recv(&args[1..]),
        Some("tcp-send") => tcp_send(&args[1..]),
        Some("tcp-recv") => tcp_recv(&args[1..]),
        _ => Err("usage: netbench send --to IP:PORT [--seconds S] [--size B] | recv --port P --label L --metric M [--wait S] | tcp-send --to IP:PORT --bytes N [--seed S] | tcp-recv --port P --bytes N [--seed S] [--wait S]".into()),
    };
    if let Err(e) = r {
        eprintln!("netbench: {e}");
        std::process::exit(1);
    }
}
