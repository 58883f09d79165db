//! What Kindling owns is not damaged by another part of Kindling, with the real
//! llama-server: servers outlive other Kindlings in the same home, the network switch
//! and the CORS default do what they say, and known-issue fixes reach the server.

use std::path::Path;

use kindling_core::bench::{SpeedOptions, SpeedRequest};
use kindling_core::hardware::{macos, vulkan, HardwareProfile};
use kindling_core::Cancel;

use kindling_testsupport::process::listening_on;

use super::{core_in, door, sample_model, SERVER_LOCK};

/// The menu-bar server (what the tray and `kindling serve` start), on the sample model.
async fn serve(core: &kindling_core::Core) -> kindling_core::server::Server {
    core.start_serving(&sample_model(), None, &Cancel::new())
        .await
        .unwrap()
        .0
}

fn chat_body() -> serde_json::Value {
    serde_json::json!({"messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 2})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_model_survives_another_kindling_opening_the_same_home() {
    let _guard = SERVER_LOCK.lock().await;
    let home = tempfile::tempdir().unwrap();
    let core = core_in(home.path()).await;
    let server = serve(&core).await;
    // A second Kindling (the CLI beside the app, or the app at login) opens the home.
    let _second = core_in(home.path()).await;
    let health = reqwest::get(format!("{}/health", door(&server)))
        .await
        .expect("the server still answers");
    assert_eq!(health.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_access_binds_every_interface_and_needs_the_key() {
    let _guard = SERVER_LOCK.lock().await;
    let home = tempfile::tempdir().unwrap();
    let core = core_in(home.path()).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    // Off (the default): loopback only, and no key asked.
    let server = serve(&core).await;
    assert_eq!(listening_on(server.port()), vec!["127.0.0.1"]);
    let url = format!("{}/v1/chat/completions", door(&server));
    let r = http.post(&url).json(&chat_body()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    server.stop().await;

    // On: every interface, the key required, and the key nowhere `ps` shows it.
    core.set_network_access(true).unwrap();
    let key = core.network_key().expect("a key was made");
    let settings_text = std::fs::read_to_string(home.path().join("settings.toml")).unwrap();
    assert!(
        !settings_text.contains(&key),
        "the key is not in settings.toml"
    );
    let server = serve(&core).await;
    assert_eq!(listening_on(server.port()), vec!["0.0.0.0"]);
    let behind = server.config().listen().1;
    assert_eq!(
        listening_on(behind),
        vec!["127.0.0.1"],
        "llama-server itself stays on loopback, behind the door"
    );
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", server.pid())).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(&key),
        "the key is visible in ps"
    );
    let inner_key = server.config().behind.as_ref().unwrap().key.clone();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(&inner_key),
        "the door's own key is visible in ps"
    );
    let url = format!("http://127.0.0.1:{}/v1/chat/completions", server.port());
    let without = http.post(&url).json(&chat_body()).send().await.unwrap();
    assert_eq!(without.status(), 401);
    let with = http
        .post(&url)
        .bearer_auth(&key)
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), 200);
    let anthropic_way = http
        .post(&url)
        .header("x-api-key", &key)
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(anthropic_way.status(), 200);
    // Behind the door, llama-server answers only the door: the owner's key does not
    // open it either.
    let direct = http
        .post(format!("http://127.0.0.1:{behind}/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 401);
    // What stays open without the key in the pinned build (the app says so).
    let status_without_key = |path: String| {
        let req = http.get(format!("http://127.0.0.1:{}{path}", server.port()));
        async move { req.send().await.unwrap().status() }
    };
    for open in kindling_core::server::access::OPEN_WITHOUT_KEY {
        assert_eq!(status_without_key(open.into()).await, 200, "{open}");
    }
    for closed in ["/props", "/v1/models"] {
        let status = status_without_key(closed.into()).await;
        assert_eq!(status, 401, "{closed} needs the key");
    }
    server.stop().await;

    // Off again: the key is gone and the next server is loopback only.
    core.set_network_access(false).unwrap();
    assert!(!home.path().join("api-key").exists());
    let server = serve(&core).await;
    assert_eq!(listening_on(server.port()), vec!["127.0.0.1"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_key_is_refused_before_anything_listens() {
    let home = tempfile::tempdir().unwrap();
    let core = core_in(home.path()).await;
    core.set_network_access(true).unwrap();
    std::fs::write(home.path().join("api-key"), "short\n").unwrap();
    let err = core
        .start_serving(&sample_model(), None, &Cancel::new())
        .await
        .err()
        .expect("a weak key is refused");
    assert_eq!(err.code(), kindling_core::ErrorCode::NetworkKey, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_pages_from_other_sites_are_refused_and_pages_here_allowed() {
    let _guard = SERVER_LOCK.lock().await;
    let home = tempfile::tempdir().unwrap();
    let core = core_in(home.path()).await;
    let server = serve(&core).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/v1/chat/completions", door(&server));
    let allow = |r: &reqwest::Response| {
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let foreign = http
        .post(&url)
        .header("Origin", "https://example.invalid")
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(
        foreign.status(),
        403,
        "the model does no work for a foreign page"
    );
    assert_eq!(allow(&foreign), None, "a foreign page may not read answers");
    let preflight = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "https://example.invalid")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 403);
    assert_eq!(allow(&preflight), None, "nor send one");
    let local_preflight = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "http://localhost:5173")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(local_preflight.status(), 204);
    assert_eq!(
        allow(&local_preflight).as_deref(),
        Some("http://localhost:5173")
    );
    // The server's own chat page is same-origin; a page on this computer is allowed.
    let local = format!("http://127.0.0.1:{}", server.port());
    let own = http
        .post(&url)
        .header("Origin", &local)
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert_eq!(allow(&own).as_deref(), Some(local.as_str()));
    let page = http
        .get(format!("{}/", door(&server)))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the chat page loads");
    server.stop().await;
}

/// The field report's kind of machine, from outputs recorded on real Macs: an Intel
/// Mac whose AMD Radeon llama.cpp reaches through Vulkan over MoltenVK.
pub(crate) fn intel_mac_with_radeon() -> HardwareProfile {
    let fixture = |name: &str| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/macos");
        std::fs::read_to_string(dir.join(name)).unwrap()
    };
    let gpus = macos::parse_spdisplays_text(&fixture(
        "spdisplays-text-macbookpro-15in-2016-hd530-radeon-pro-450-mojave.txt",
    ));
    let vulkan_devices = vulkan::parse_startup_log(&fixture(
        "llama-vulkan-moltenvk-rx5700xt-radeon-pro-vega56-b8334-excerpt.log",
    ));
    assert!(!gpus.is_empty() && !vulkan_devices.is_empty());
    HardwareProfile {
        os: "macos".into(),
        os_version: Some("13.6".into()),
        arch: "x86_64".into(),
        model_identifier: Some("MacBookPro13,3".into()),
        cpu_brand: "Intel(R) Core(TM) i7-6820HQ CPU @ 2.70GHz".into(),
        physical_cores: Some(4),
        logical_cores: 8,
        ram_total_bytes: 16 << 30,
        ram_available_bytes: 8 << 30,
        gpus,
        vulkan_devices,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_issue_fix_reaches_the_server_and_the_record() {
    let _guard = SERVER_LOCK.lock().await;
    let home = tempfile::tempdir().unwrap();
    let core = core_in(home.path()).await;
    let request = || SpeedRequest {
        model: sample_model(),
        options: SpeedOptions {
            prompt_tokens: 32,
            gen_tokens: 8,
            repetitions: 1,
            max_repetitions: 1,
            warmup: false,
        },
        port: None,
        probe_bandwidth: false,
    };
    let fa = |args: &[String]| {
        args.windows(2)
            .find(|w| w[0] == "--flash-attn")
            .map(|w| w[1].clone())
    };
    // This machine: no known issue applies, llama.cpp decides.
    let here = core.bench_speed(request(), &Cancel::new()).await.unwrap();
    let detail = core.db().run_detail(here.run_id).await.unwrap();
    assert_eq!(fa(&detail.server_args).as_deref(), Some("auto"));
    // An AMD GPU over MoltenVK: flash attention off, in the arguments the real server
    // ran with and in the stored run.
    core.assume_hardware(intel_mac_with_radeon());
    let report = core.bench_speed(request(), &Cancel::new()).await.unwrap();
    let detail = core.db().run_detail(report.run_id).await.unwrap();
    assert_eq!(
        fa(&detail.server_args).as_deref(),
        Some("off"),
        "{:?}",
        detail.server_args
    );
    assert!(
        detail.server_args.iter().any(|a| a == "--cors-origins"),
        "{:?}",
        detail.server_args
    );
    let served = serve(&core).await;
    assert_eq!(fa(&served.config().to_args()).as_deref(), Some("off"));
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_mac_gpu_vendor_gets_no_fix() {
    // The dense sample model on Apple Silicon's Metal: no known issue, nothing forced.
    let home = tempfile::tempdir().unwrap();
    let core = core_in(home.path()).await;
    let mut hw = intel_mac_with_radeon();
    hw.vulkan_devices.clear();
    hw.gpus = macos::parse_spdisplays_json(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/macos/spdisplays-macbookpro-m1-pro-14core-3-displays.json"),
        )
        .unwrap(),
    );
    let registered = kindling_core::store::register(core.db(), &sample_model())
        .await
        .unwrap();
    let (config, plan) = core.launch_config(&registered, &hw, 1234);
    assert!(plan.issues.is_empty(), "{plan:?}");
    assert_eq!(
        config.flash_attention,
        kindling_core::server::FlashAttention::Auto
    );
}

/// Two looks at the recommendation agree: the memory speed measured for the first is
/// kept for the next, not measured afresh (whose noise reordered near neighbours).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_speed_behind_predictions_is_measured_once() {
    let home = tempfile::tempdir().unwrap();
    let core = super::core_in(home.path()).await;
    let (first, _, _) = core.machine_profile().await.unwrap();
    let (second, _, _) = core.machine_profile().await.unwrap();
    let measured = first.cpu_bandwidth.expect("measured");
    assert!(measured > 1e8, "{measured}");
    assert_eq!(second.cpu_bandwidth, Some(measured));
    assert_eq!(core.db().latest_bandwidth().await.unwrap(), Some(measured));
}

/// The speed limit a run reports belongs to the memory its weights were in. This machine
/// has no GPU: Macs recorded elsewhere stand in (the plan puts the sample model wholly on
/// their GPU; the real server here runs it on the processor, which is why only the limit,
/// not the fraction reached, is asserted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_speed_limit_is_the_memory_its_weights_were_in() {
    let _guard = SERVER_LOCK.lock().await;
    let home = tempfile::tempdir().unwrap();
    let core = core_in(home.path()).await;
    let request = || SpeedRequest {
        model: sample_model(),
        options: SpeedOptions {
            prompt_tokens: 32,
            gen_tokens: 16,
            repetitions: 1,
            max_repetitions: 1,
            warmup: false,
        },
        port: None,
        probe_bandwidth: false,
    };
    // A MacBook Pro's Radeon Pro 450: in Kindling's GPU table at 81 GB/s.
    core.assume_hardware(intel_mac_with_radeon());
    let known = core.bench_speed(request(), &Cancel::new()).await.unwrap();
    let limit = known.summary.limit.clone().expect("a limit");
    assert_eq!(
        limit.placement,
        kindling_core::recommend::fit::Placement::Gpu
    );
    assert!(limit.memory.contains("Radeon Pro 450"), "{}", limit.memory);
    assert_eq!(limit.bandwidth_bytes_per_second, Some(81e9));
    let ram = core.db().latest_bandwidth().await.unwrap().unwrap();
    assert_ne!(limit.bandwidth_bytes_per_second, Some(ram));

    // A Mac Pro's NVIDIA card (1 GB; the sample model fits it wholly with a short
    // context): its own memory, from the table, again not main memory's figure. (A GPU
    // the table lacks gets no limit at all: `bench::limit`'s tests.)
    let mut hw = intel_mac_with_radeon();
    hw.vulkan_devices.clear();
    hw.gpus = macos::parse_spdisplays_text(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/macos/spdisplays-text-mac-nvidia-geforce-gt-730.txt"),
        )
        .unwrap(),
    );
    core.assume_hardware(hw);
    core.update_settings(|s| s.ctx_size = 512).unwrap();
    let nvidia = core.bench_speed(request(), &Cancel::new()).await.unwrap();
    let s = &nvidia.summary;
    let limit = s.limit.clone().unwrap();
    assert_eq!(
        limit.placement,
        kindling_core::recommend::fit::Placement::Gpu
    );
    assert!(limit.memory.contains("GT 730"), "{}", limit.memory);
    let table = kindling_core::catalog::gpu_bandwidth("GeForce GT 730")
        .unwrap()
        .gb_per_s
        * 1e9;
    assert_eq!(limit.bandwidth_bytes_per_second, Some(table));
    assert_eq!(
        s.effective_bandwidth_bytes_per_second,
        Some(s.gen_per_second.median * s.model_bytes_per_token as f64)
    );
}
