//! Benchmarks for model files, printing figures (run with `cargo bench -p kindling-core --bench store`):
//! - download throughput on loopback against `curl` on the same file and server;
//! - cleanup scan time for a synthetic Ollama store of 50,000 blobs and 5,000 manifests.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use kindling_core::cleanup::{self, Stores};
use kindling_core::download::{self, Control, DownloadSpec, Policy};
use kindling_core::Events;
use kindling_testsupport::FileServer;

fn sample_model() -> std::path::PathBuf {
    let m = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.runtime/models/gemma-3-270m-q4_k_m.gguf");
    assert!(m.is_file(), "run `make setup` first");
    m
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn download_vs_curl() {
    let name = "bench/model-GGUF/model.gguf";
    let srv = FileServer::start(&[(name, sample_model())]).await;
    let (sha, size) = srv.file_meta(name);
    let url = format!(
        "{}/bench/model-GGUF/resolve/main/model.gguf",
        srv.base_url()
    );
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let (mut ours, mut curl, mut curl_only) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..5 {
        let dest = dir.path().join(format!("k{i}.gguf"));
        let spec = DownloadSpec {
            url: url.clone(),
            dest: dest.clone(),
            size,
            sha256: sha.clone(),
            token: None,
        };
        let t = Instant::now();
        download::fetch(
            &http,
            &spec,
            Policy::default(),
            &Events::new(),
            &Control::default(),
        )
        .await
        .unwrap();
        ours.push(size as f64 / t.elapsed().as_secs_f64());
        std::fs::remove_file(&dest).unwrap();

        // curl with the same job: follow the redirect, write the file, then sha256sum it
        // (Kindling verifies while it goes; a fair comparison verifies too).
        let out = dir.path().join(format!("c{i}.gguf"));
        let t = Instant::now();
        let st = std::process::Command::new("curl")
            .args(["-sSL", "-o"])
            .arg(&out)
            .arg(&url)
            .status()
            .unwrap();
        assert!(st.success());
        curl_only.push(size as f64 / t.elapsed().as_secs_f64());
        let sum = std::process::Command::new("sha256sum")
            .arg(&out)
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&sum.stdout).starts_with(&sha));
        curl.push(size as f64 / t.elapsed().as_secs_f64());
        std::fs::remove_file(&out).unwrap();
    }
    let (o, c, co) = (median(ours), median(curl), median(curl_only));
    println!(
        "download, {} MB on loopback, median of 5:",
        size / 1_000_000
    );
    println!(
        "  kindling (stream + sha256 + rename):  {:.0} MB/s",
        o / 1e6
    );
    println!(
        "  curl -L alone (no verification):      {:.0} MB/s",
        co / 1e6
    );
    println!(
        "  curl -L + sha256sum:                  {:.0} MB/s",
        c / 1e6
    );
    println!("  ratio kindling / curl alone:          {:.2}", o / co);
    println!("  ratio kindling / curl + sha256sum:    {:.2}", o / c);
}

fn cleanup_scan() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ollama");
    let blobs = root.join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let old = SystemTime::now() - Duration::from_secs(7200);
    let hex = |n: u64| format!("{:064x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let t = Instant::now();
    for n in 0..50_000u64 {
        let p = blobs.join(format!("sha256-{}", hex(n)));
        let f = std::fs::File::create(&p).unwrap();
        f.set_modified(old).unwrap();
    }
    // 5,000 manifests, each using 8 blobs: 40,000 referenced, 10,000 orphans.
    for m in 0..5_000u64 {
        let layers: Vec<_> = (0..8)
            .map(|k| serde_json::json!({"mediaType": "application/vnd.ollama.image.model", "digest": format!("sha256:{}", hex(m * 8 + k)), "size": 1}))
            .collect();
        let p = root.join(format!(
            "manifests/registry.ollama.ai/library/model{}/tag{}",
            m / 10,
            m % 10
        ));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(
            &p,
            serde_json::json!({"config": layers[0], "layers": layers}).to_string(),
        )
        .unwrap();
    }
    println!(
        "cleanup scan, synthetic Ollama store (50,000 blobs, 5,000 manifests; built in {:.1} s):",
        t.elapsed().as_secs_f64()
    );
    let stores = Stores {
        ollama: Some(root),
        ..Stores::default()
    };
    let mut times = Vec::new();
    for run in 0..4 {
        let t = Instant::now();
        let plan = cleanup::scan(&stores, SystemTime::now());
        let s = t.elapsed().as_secs_f64();
        assert_eq!(plan.items.len(), 10_000);
        if run == 0 {
            println!("  first scan:        {:.3} s", s);
        } else {
            times.push(s);
        }
    }
    println!(
        "  warm scan, median: {:.3} s (10,000 orphans found)",
        median(times)
    );
}

fn main() {
    // `cargo test --benches` runs this with --bench absent; only measure when asked.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(download_vs_curl());
    cleanup_scan();
}
