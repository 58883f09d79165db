//! `make bench-split`: what lending a second Mac's memory costs and gives, measured on
//! this machine. The sample model alone, then split (most of its layers on a helper
//! Kindling on 127.0.0.2) over loopback and over an emulated link of 1 Gbit/s with a
//! round trip of 0, 1 and 5 ms; for each: the plan's predicted speed, the measured one,
//! and how long the model took to load, first and again (the helper's tensor cache warm).
//!
//! The link: `tc netem` is what the issue asked for, but this kernel has no netem
//! (`tc qdisc add … netem` answers "Specified qdisc kind is unknown"), so a userspace
//! link plays it, between the serving Kindling and the helper's: each direction holds
//! every chunk for half the round trip and paces bytes to the rate. Both "Macs" share
//! this machine's cores and memory, so a split runs slower here than on two Macs.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kindling_testsupport::macs::{self, completion, free_port, healthy, wait_until, Running};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kindling"))
}

fn sample_model() -> PathBuf {
    let m = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.runtime/models/gemma-3-270m-q4_k_m.gguf");
    assert!(m.is_file(), "run `make setup` first");
    m
}

/// A link from `listen` to `to`: one-way `delay` each direction, `rate` bytes/s.
fn link(listen: &str, to: String, delay: Duration, rate: f64) {
    let listener = TcpListener::bind(listen).unwrap();
    std::thread::spawn(move || {
        for inbound in listener.incoming().flatten() {
            let Ok(outbound) = TcpStream::connect(&to) else {
                continue;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            for (from, into) in [
                (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                (outbound, inbound),
            ] {
                one_way(from, into, delay, rate);
            }
        }
    });
}

fn one_way(mut from: TcpStream, mut into: TcpStream, delay: Duration, rate: f64) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        // The wire is busy until `free`: bytes leave at the rate, after the delay.
        let mut free = Instant::now();
        for (at, bytes) in rx {
            let due = (at + delay).max(free);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            free = Instant::now() + Duration::from_secs_f64(bytes.len() as f64 / rate);
            if into.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = into.shutdown(std::net::Shutdown::Write);
    });
}

/// Generation speed at `port`: the median of three greedy answers of 64 tokens.
fn speed(port: u16) -> f64 {
    let mut v: Vec<f64> = (0..3)
        .map(|_| {
            let c = completion(port, "Write a short story about a lighthouse keeper.", 64);
            c["timings"]["predicted_per_second"]
                .as_f64()
                .unwrap_or_else(|| panic!("no timings in {c}"))
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[1]
}

/// Starts `kindling serve` with `args`; returns it once serving, with the seconds it took.
fn serve(home: &Path, port: u16, args: &[&str], ready: &str) -> (Running, f64) {
    let mut c = macs::kindling(bin(), home);
    c.args(["serve", "--model"])
        .arg(sample_model())
        .args(["--port", &port.to_string()])
        .args(args);
    let started = Instant::now();
    let mut r = Running::start(c);
    r.expect(ready, Duration::from_secs(300));
    assert!(wait_until(Duration::from_secs(30), || healthy(port)));
    (r, started.elapsed().as_secs_f64())
}

fn predicted(r: &Running) -> f64 {
    let text = r.text();
    let line = text
        .lines()
        .find(|l| l.starts_with("Predicted speed:"))
        .unwrap_or_else(|| panic!("no plan in:\n{text}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let (serving, helper) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let hp = free_port("127.0.0.2");
    macs::pair(
        bin(),
        serving.path(),
        "Server",
        helper.path(),
        "Helper",
        "127.0.0.2",
        hp,
    );
    let _helper = macs::share(bin(), helper.path(), "Helper", "127.0.0.2", hp, "700MB");
    let port = free_port("127.0.0.1");

    let (alone, load) = serve(serving.path(), port, &[], "Serving");
    let alone_speed = speed(port);
    drop(alone);
    println!("The sample model (gemma-3-270m Q4_K_M) on this machine:");
    println!("  alone                     load {load:>5.1} s                   measured {alone_speed:>5.1} tok/s");

    let peers = serving.path().join("peers.json");
    let book = std::fs::read_to_string(&peers).unwrap();
    let direct = format!("127.0.0.2:{hp}");
    let settings: [(&str, Option<(f64, f64)>); 4] = [
        ("split, loopback", None),
        ("split, 1 Gbit/s, 0 ms", Some((0.0, 125e6))),
        ("split, 1 Gbit/s, 1 ms", Some((1.0, 125e6))),
        ("split, 1 Gbit/s, 5 ms", Some((5.0, 125e6))),
    ];
    for (label, emulated) in settings {
        let address = match emulated {
            None => direct.clone(),
            Some((rtt_ms, rate)) => {
                let at = format!("127.0.0.3:{}", free_port("127.0.0.3"));
                link(
                    &at,
                    direct.clone(),
                    Duration::from_secs_f64(rtt_ms / 2000.0),
                    rate,
                );
                at
            }
        };
        std::fs::write(&peers, book.replace(&direct, &address)).unwrap();
        let args = [
            "--with",
            "Helper",
            "--local-memory",
            "250MB",
            "--name",
            "Server",
        ];
        let (first, first_load) = serve(serving.path(), port, &args, "Split with");
        let measured = speed(port);
        let planned = predicted(&first);
        drop(first);
        let (_again, warm_load) = serve(serving.path(), port, &args, "Split with");
        println!(
            "  {label:<24}  load {first_load:>5.1} s, again {warm_load:>5.1} s   predicted {planned:>5.1}, measured {measured:>5.1} tok/s"
        );
    }
    let cache = kindling_core::peers::share::cache_bytes(&helper.path().join("rpc-cache/rpc"));
    println!("The helper's tensor cache holds {cache} bytes: llama.cpp caches tensors over 10 MiB, here the output head the helper carries (178 MB); the first load sends it, a load again reads it from the cache.");
}
