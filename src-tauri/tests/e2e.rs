//! End to end: the real app in a real window (Xvfb), driven through WebDriver, with the
//! real llama-server and the sample model, a real SQLite file, and a planted model store.
//! One app session walks the user's path; screenshots of every screen land in
//! target/e2e-screenshots/.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use support::{App, Display};

const HOUR: Duration = Duration::from_secs(3600);

fn write_old(path: &Path, len: usize) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, vec![7u8; len]).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - 2 * HOUR).unwrap();
    path.to_path_buf()
}

/// An Ollama store with one blob no manifest uses and one unfinished download, and a
/// stray partial download in Kindling's own folder: 3 MB + 2 MB + 1 MB to reclaim.
fn plant(home: &Path, ollama: &Path) -> Vec<PathBuf> {
    let orphan = write_old(
        &ollama.join(format!("blobs/sha256-{}", "ab".repeat(32))),
        3_000_000,
    );
    let partial = write_old(
        &ollama.join(format!("blobs/sha256-{}-partial", "cd".repeat(32))),
        2_000_000,
    );
    std::fs::create_dir_all(ollama.join("manifests")).unwrap();
    let ours = write_old(&home.join("models/abandoned.gguf.part"), 1_000_000);
    vec![orphan, partial, ours]
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Someone else's published run (a real export, recorded on another machine), imported
/// into the home before the app starts, as `kindling history import` does: run 1.
fn import_someone_elses_run(home: &Path) {
    let doc: kindling_core::history::RunExport = serde_json::from_str(include_str!(
        "../../crates/core/tests/fixtures/exports/sample-quick-chatml.json"
    ))
    .unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let core = kindling_core::Core::open(kindling_core::paths::Paths::new(home))
            .await
            .unwrap();
        let id = core
            .db()
            .import_run(&doc, &kindling_core::history::now())
            .await
            .unwrap();
        assert_eq!(id, 1);
    });
}

/// Another Mac lending itself, as `kindling share` runs it: a second Kindling home, its
/// helper listening at `host` (a loopback address of its own), with its real RPC server;
/// serving `serves` too (its own llama-server, as `kindling serve` beside the share).
struct OtherMac {
    code: String,
    address: String,
    quit: tokio::sync::oneshot::Sender<()>,
    done: std::thread::JoinHandle<()>,
}

impl OtherMac {
    /// Pairs the app with it through the pairing form (its code and address typed), and
    /// waits until the list shows it reachable as `name`.
    fn pair_in(&self, app: &App, name: &str) {
        app.clear("[data-testid=pair-code]");
        app.clear("[data-testid=pair-address]");
        app.type_into("[data-testid=pair-code]", &self.code);
        app.type_into("[data-testid=pair-address]", &self.address);
        app.click("[data-testid=pair-go]");
        app.wait(&format!("{name} listed as reachable"), secs(60), || {
            app.text(&format!(
                "[data-testid=mac][data-name='{name}'][data-reachable=true]"
            ))
        });
    }

    /// It quits (its owner stops lending it; its server, if any, stops).
    fn quit(self) {
        self.quit.send(()).unwrap();
        self.done.join().unwrap();
    }
}

/// A short greedy answer from the server at `url` (`…/v1`): its words.
fn answer(url: &str) -> String {
    let r = reqwest::blocking::Client::new()
        .post(format!("{url}/chat/completions"))
        .json(&serde_json::json!({
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 8,
            "temperature": 0
        }))
        .timeout(secs(120))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let v: serde_json::Value = r.json().unwrap();
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn lend_from(home: &Path, host: [u8; 4], name: &str, serves: Option<&Path>) -> OtherMac {
    let (shown, code) = std::sync::mpsc::channel();
    let (quit, quitting) = tokio::sync::oneshot::channel::<()>();
    let (home, name) = (home.to_path_buf(), name.to_string());
    let serves = serves.map(Path::to_path_buf);
    let done = std::thread::spawn(move || {
        let lending = lend(home, host, name, serves, shown, quitting);
        tokio::runtime::Runtime::new().unwrap().block_on(lending);
    });
    let (code, address) = code
        .recv_timeout(secs(120))
        .expect("the other Mac shows a code");
    OtherMac {
        code,
        address,
        quit,
        done,
    }
}

async fn lend(
    home: PathBuf,
    host: [u8; 4],
    name: String,
    serves: Option<PathBuf>,
    shown: std::sync::mpsc::Sender<(String, String)>,
    quitting: tokio::sync::oneshot::Receiver<()>,
) {
    use kindling_core::peers::share::{Helper, ShareOptions, DEAD_AFTER, HEARTBEAT};
    let core = kindling_core::Core::open(kindling_core::Paths::new(&home))
        .await
        .unwrap();
    let cancel = kindling_core::Cancel::new();
    let serving = match &serves {
        Some(model) => {
            let port = kindling_testsupport::macs::free_port("127.0.0.1");
            Some(
                core.start_serving(model, Some(port), &cancel)
                    .await
                    .unwrap()
                    .0,
            )
        }
        None => None,
    };
    let opts = ShareOptions {
        host: std::net::IpAddr::from(host),
        port: 0,
        memory_bytes: 1_000_000_000,
        use_gpu: false,
        cache_limit_bytes: 1_000_000_000,
        heartbeat: HEARTBEAT,
        dead_after: DEAD_AFTER,
        serve_port: serving.as_ref().map(|s| s.config().port),
        // This machine has no battery to go by.
        lend_when: kindling_core::hardware::power::LendWhen {
            plugged_in: false,
            lid_open: false,
        },
        on_ask: None,
        stop_unused_after: kindling_core::peers::on_ask::STOP_UNUSED_AFTER,
        door_key: None,
    };
    let lender = core.lender(&name, &opts).await.unwrap();
    let helper = Helper::open(
        core.identity().unwrap(),
        core.book(),
        lender,
        opts,
        core.paths(),
    )
    .await
    .unwrap();
    shown
        .send((helper.show_code(), helper.local_addr().to_string()))
        .unwrap();
    let _ = quitting.await;
    helper.stop().await;
    if let Some(server) = serving {
        server.stop().await;
    }
}

#[test]
fn a_user_benchmarks_serves_and_cleans_up() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("kindling");
    let ollama = t.path().join("ollama");
    let planted = plant(&home, &ollama);
    let (port, second_port) = support::home_with_free_ports(&home);
    import_someone_elses_run(&home);
    let empty = t.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();

    let display = Display::start();
    let app = App::launch(
        &display,
        &[
            ("KINDLING_HOME", &home),
            ("OLLAMA_MODELS", &ollama),
            ("HF_HUB_CACHE", &empty.join("hf")),
            ("XDG_DATA_HOME", &t.path().join("xdg")),
        ],
    );

    // Home: the machine in plain words, then Benchmark my Mac — "my computer" here: a
    // Linux machine is no Mac.
    app.wait_ready();
    app.wait_text("[data-testid=machine]", secs(60));
    app.wait("the machine's word on the button", secs(10), || {
        (app.text("[data-testid=bench-start]").as_deref() == Some("Benchmark my computer"))
            .then_some(())
    });
    app.screenshot("home");
    app.click("[data-testid=bench-start]");
    let progress = app.wait_text("[data-testid=bench-progress]", secs(30));
    assert!(!progress.is_empty());
    app.screenshot("home-benchmarking");
    // One click measures speed, then the quick answer-quality suite (on by default).
    let result = app.wait_text("[data-testid=bench-result]", secs(900));
    assert!(
        result.contains("words per second here"),
        "result card: {result}"
    );
    assert!(
        result.contains("quick tests well"),
        "no quality result on the card: {result}"
    );
    assert!(result.contains("Saved as run"), "{result}");
    app.screenshot("home-result");

    // A second run, cancelled: it stops, says so, and the first result is not lost.
    app.click("[data-testid=bench-start]");
    app.wait("the second run to reach the model", secs(120), || {
        let t = app.text("[data-testid=bench-progress]")?;
        (t.contains("Warming up") || t.contains("Measuring speed")).then_some(())
    });
    app.click("[data-testid=bench-cancel]");
    let stopped = app.wait_text(".error[data-code=cancelled]", secs(60));
    assert!(stopped.contains("Nothing was lost"), "{stopped}");

    // History: both runs are there, one completed and one interrupted.
    app.click("button[data-screen=history]");
    let table = app.wait("both runs in History", secs(30), || {
        app.text("[data-testid=history-table] tbody")
            .filter(|t| t.contains("completed") && t.contains("interrupted"))
    });
    assert!(table.to_lowercase().contains("gemma"), "history: {table}");
    app.screenshot("history");
    // Someone else's run beside this machine's, judged test by test.
    // The card says "Saved as run S and Q": S the speed run, Q the quality run.
    let saved: String = result
        .split(" and ")
        .find_map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            (!digits.is_empty()).then_some(digits)
        })
        .expect("the card names the quality run");
    app.click("input[aria-label='Compare run 1']");
    app.click(&format!("input[aria-label='Compare run {saved}']"));
    let judged = app.wait_text("[data-testid=compare-judgement]", secs(30));
    assert!(
        judged.contains("answered alike") || judged.contains("answered better"),
        "{judged}"
    );
    app.screenshot("history-compare");

    // The quality run in full, as a page anyone can read: which format the model was
    // asked in, then the page the app writes, opened in a browser (WebKitGTK's).
    app.click(&format!("button[aria-label='Open run {saved}']"));
    let asked = app.wait_text("[data-testid=asked-in]", secs(30));
    assert!(
        asked.contains("Gemma's format, chosen by Kindling"),
        "{asked}"
    );
    app.click("[data-testid=run-page]");
    let said = app.wait("the page's path", secs(30), || {
        app.text(".notice").filter(|t| t.contains(".html"))
    });
    let page = PathBuf::from(
        said.split(['(', ' '])
            .find_map(|w| w.find(".html").map(|end| &w[..end + 5]))
            .expect("the notice names the page"),
    );
    assert!(page.is_file(), "{said}");
    let browser = App::browse(&display, &page);
    let title = browser.wait("the page's title", secs(30), || {
        browser
            .js("return document.title")
            .as_str()
            .filter(|t| t.starts_with("Kindling run"))
            .map(str::to_string)
    });
    assert!(title.contains(&format!("run {saved}")), "{title}");
    let tests = browser.js("return document.querySelectorAll('section.test').length");
    assert_eq!(tests.as_u64(), Some(10), "a section per quick test");
    let facts = browser.text("table.facts").unwrap_or_default();
    assert!(facts.contains("Gemma's format"), "{facts}");
    assert_eq!(
        browser.js("return document.querySelectorAll('svg.chart rect').length > 0"),
        serde_json::Value::Bool(true),
        "the chart is drawn inline"
    );
    browser.screenshot("history-run-page");
    drop(browser);

    // Server: with its port taken, it says so; then it starts the way the tray does,
    // answers, and stops.
    app.click("button[data-screen=server]");
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    app.click("[data-testid=server-toggle]");
    let busy = app.wait_text(".error[data-code=port_in_use]", secs(30));
    assert!(busy.contains(&port.to_string()), "{busy}");
    // The next step in the app's words, not a command-line flag.
    assert!(
        busy.contains("Choose another port for the server in Settings") && !busy.contains("--port"),
        "{busy}"
    );
    drop(squatter);
    app.click("[data-testid=server-toggle]");
    app.wait_server("ready", secs(120));
    let url = app.wait_text("[data-testid=api-url]", secs(10));
    assert_eq!(url, format!("http://127.0.0.1:{port}/v1"));
    let models = reqwest::blocking::get(format!("{url}/models")).unwrap();
    assert!(models.status().is_success(), "{}", models.status());
    app.screenshot("server-running");
    // A second model beside it, on the processor only, on its own port: both answer.
    let sample = support::repo().join(".runtime/models/gemma-3-270m-q4_k_m.gguf");
    app.js(&format!(
        "const s = document.querySelector('[data-testid=second-model]'); s.value = {:?}; \
         s.dispatchEvent(new Event('change', {{bubbles: true}}));",
        sample.display().to_string()
    ));
    app.click("[data-testid=second-toggle]");
    let second_ready = || {
        app.attr("[data-testid=second-state]", "data-state")
            .as_deref()
            == Some("ready")
    };
    app.wait("the second model to be ready", secs(120), || {
        second_ready().then_some(())
    });
    let second_url = app.wait_text("[data-testid=second-api-url]", secs(10));
    assert_eq!(second_url, format!("http://127.0.0.1:{second_port}/v1"));
    for base in [&url, &second_url] {
        let r = reqwest::blocking::get(format!("{base}/models")).unwrap();
        assert!(r.status().is_success(), "{base}: {}", r.status());
    }
    let servers = || -> Vec<Vec<String>> {
        support::tree(app.app_pid().unwrap())
            .into_iter()
            .map(kindling_testsupport::process::cmdline)
            .filter(|a| a.iter().any(|x| x == "--model"))
            .collect()
    };
    let has_device_none = |a: &[String]| a.windows(2).any(|w| w[0] == "--device" && w[1] == "none");
    // Both llama-servers run behind Kindling's front door (on loopback ports of their
    // own): one on the processor only, the other where Kindling plans it.
    let running = servers();
    assert_eq!(running.len(), 2, "{running:?}");
    assert_eq!(
        running.iter().filter(|a| has_device_none(a)).count(),
        1,
        "{running:?}"
    );
    app.screenshot("server-two-models");
    // Where a port listens: `0.0.0.0` or `127.0.0.1`.
    let host = |p: u16| {
        kindling_testsupport::process::listening_on(p)
            .into_iter()
            .next()
    };
    let wait_network = |words: &str| {
        app.wait(words, secs(120), || {
            let now = app.text("[data-testid=network-now]")?;
            (now.contains(words) && app.server_is("ready")).then_some(now)
        })
    };
    // Network access on: the running servers (both) restart listening beyond this computer.
    app.click("[data-testid=network-switch]");
    wait_network("accepts other devices");
    app.wait_text("[data-testid=api-key]", secs(10));
    app.wait("the second model to be back", secs(120), || {
        second_ready().then_some(())
    });
    assert_eq!(
        host(second_port).as_deref(),
        Some("0.0.0.0"),
        "the second one follows the switch too"
    );
    app.screenshot("server-network");
    app.click("[data-testid=network-switch]");
    wait_network("only apps on this computer");
    app.wait("the second model to be back", secs(120), || {
        second_ready().then_some(())
    });
    assert_eq!(host(second_port).as_deref(), Some("127.0.0.1"));

    // Use another Mac. Not paired yet; a code typed for an address where no Mac answers
    // is said plainly; lending this one shows a code (and an address, for another network),
    // which another "Mac" (a second Kindling home, pairing as `kindling pair CODE` does)
    // types, finding this one on the network; the list
    // then shows it, and Unpair forgets it. Stop lending closes the share port.
    app.wait_text("[data-testid=macs-none]", secs(30));
    app.type_into("[data-testid=pair-code]", "123 456");
    app.type_into("[data-testid=pair-address]", "127.0.0.1:9");
    app.click("[data-testid=pair-go]");
    let refused = app.wait_text("[data-testid=other-macs] .error", secs(30));
    assert!(
        refused.contains("did not answer at 127.0.0.1:9"),
        "{refused}"
    );
    // Lend only while the lid is open too (kept in Settings): the lending Mac says both.
    app.click("[data-testid=lend-lid-open]");
    app.wait("the lid setting kept", secs(10), || {
        std::fs::read_to_string(home.join("settings.toml"))
            .ok()
            .filter(|t| t.contains("lend_lid_open_only = true"))
    });
    // Lend at most 3 GB (kept in Settings, said while lending).
    app.type_into("[data-testid=lend-memory]", "3\u{E007}");
    app.wait("the lent memory kept", secs(10), || {
        std::fs::read_to_string(home.join("settings.toml"))
            .ok()
            .filter(|t| t.contains("lend_memory_bytes = 3000000000"))
    });
    app.click("[data-testid=lend-start]");
    let code = app.wait_text("[data-testid=lend-code]", secs(60));
    let address = app.wait_text("[data-testid=lend-address]", secs(5));
    assert!(!address.is_empty());
    let lending = app.wait_text("[data-testid=lending]", secs(5));
    assert!(lending.contains("it finds this"), "{lending}");
    assert!(lending.contains("up to 3.00 GB"), "{lending}");
    assert!(
        lending.contains("may ask it to serve a model it has that fits here"),
        "{lending}"
    );
    assert!(
        lending.contains("only while it is plugged in and its lid is open"),
        "{lending}"
    );
    let other = t.path().join("attic-mac");
    let paired = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let core = kindling_core::Core::open(kindling_core::Paths::new(&other))
                .await
                .unwrap();
            // No address: the app's Mac is announced on the network (Bonjour), and the
            // code alone finds it, as `kindling pair CODE` does.
            core.pair_with_code(&code, None, "Attic Mac").await
        });
    let peer = paired.unwrap_or_else(|e| panic!("pairing with the app's code failed: {e}"));
    assert!(!peer.name.is_empty());
    let listed = app.wait("the Mac that paired in the list", secs(30), || {
        app.text("[data-testid=mac][data-name='Attic Mac']")
    });
    // It lends nothing (no `kindling share` runs in its home): listed, not reachable, and why.
    assert_eq!(
        app.attr("[data-testid=mac][data-name='Attic Mac']", "data-reachable")
            .as_deref(),
        Some("false"),
        "{listed}"
    );
    assert!(listed.contains("Attic Mac —"), "{listed}");
    app.screenshot("server-other-macs");
    // Route first, to this computer: Attic Mac may give the sample model only 100 MB and
    // asks this one, which has it and (its server stopped) serves nothing, to serve it.
    // The menu-bar server starts for Attic Mac, says so, and answers Attic Mac's apps;
    // Stop lending stops it too (it was never this owner's choice).
    app.click("[data-testid=server-toggle]");
    app.wait_server("stopped", secs(30));
    let attic_rt = tokio::runtime::Runtime::new().unwrap();
    let attic_core = attic_rt
        .block_on(kindling_core::Core::open(kindling_core::Paths::new(&other)))
        .unwrap();
    let attic_port = kindling_testsupport::macs::free_port("127.0.0.1");
    let routed = attic_rt.block_on(async {
        let me = attic_core.caller("Attic Mac").unwrap();
        let planned = attic_core
            .plan_with(
                &sample,
                std::slice::from_ref(&peer.name),
                Some(100_000_000),
                &me,
            )
            .await
            .unwrap();
        assert!(planned.route_starts, "{:?}", planned.lines("the sample"));
        let watch = kindling_core::peers::pool::Watch::default();
        attic_core
            .route(&sample, &planned, attic_port, &me, watch)
            .await
    });
    let relay = routed
        .unwrap_or_else(|e| panic!("Attic Mac's request to serve was refused: {e}"))
        .expect("a route");
    app.wait_server("ready", secs(120));
    let started_for = app.wait_text("[data-testid=server-started-for]", secs(10));
    assert!(
        started_for.contains("Started for Attic Mac"),
        "{started_for}"
    );
    assert_eq!(
        answer(&format!("http://127.0.0.1:{attic_port}/v1")),
        answer(&url),
        "Attic Mac's apps get this computer's answer"
    );
    app.screenshot("server-started-for-another-mac");
    relay.stop();
    drop(attic_rt);
    app.click("[data-testid=lend-stop]");
    app.wait_server("stopped", secs(30));
    app.wait_text("[data-testid=lend-start]", secs(30));
    app.click("[data-testid=lend-start]");
    app.wait_text("[data-testid=lend-code]", secs(60));
    app.click("[data-testid=mac-unpair]");
    app.wait("the unpaired Mac gone", secs(30), || {
        app.text("[data-testid=macs-none]")
    });
    app.click("[data-testid=lend-stop]");
    app.wait_text("[data-testid=lend-start]", secs(30));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", kindling_core::peers::DEFAULT_SHARE_PORT))
            .is_err(),
        "the share port still listens after Stop lending"
    );

    // Serve a model with another Mac. It lends itself (a second home's helper on its
    // own loopback address, from "another network": its address is typed); paired by its
    // code, it is listed as reachable. The plan with at most 300 MB of this computer
    // splits the sample model; served so, the address is unchanged,
    // llama-server reaches the other Mac only through Kindling's loopback relay, and the
    // Server screen lists each Mac's share. When the other Mac quits, the server stops,
    // the screen says which Mac and that the model does not fit without it.
    let attic = lend_from(
        &t.path().join("attic-helper"),
        [127, 0, 0, 5],
        "Attic Mac",
        None,
    );
    attic.pair_in(&app, "Attic Mac");
    app.click("[data-testid=mac-serve-with]");
    // 100 MB is less than the part this computer must hold itself: said, and no start.
    app.type_into("[data-testid=serve-with-memory]", "100MB");
    app.click("[data-testid=serve-with-plan]");
    let short = app.wait_text("[data-testid=serve-with-lines]", secs(60));
    assert!(
        short.contains("must hold the model's token embeddings itself"),
        "{short}"
    );
    assert!(
        app.attr("[data-testid=serve-with-go]", "disabled")
            .is_some(),
        "Serve offered for a plan that does not fit"
    );
    app.clear("[data-testid=serve-with-memory]");
    app.type_into("[data-testid=serve-with-memory]", "300MB");
    app.click("[data-testid=serve-with-plan]");
    let plan = app.wait("the plan for 300 MB", secs(60), || {
        app.text("[data-testid=serve-with-lines]")
            .filter(|t| t.contains("split by its"))
    });
    assert!(plan.contains("Attic Mac"), "{plan}");
    assert!(plan.contains("Predicted speed"), "{plan}");
    app.screenshot("server-serve-with-plan");
    app.click("[data-testid=serve-with-go]");
    app.wait("the split model to be ready", secs(180), || {
        (app.server_is("ready") && app.text("[data-testid=server-shares]").is_some()).then_some(())
    });
    let speed = app.wait("the split model's speed measured", secs(120), || {
        app.text("[data-testid=server-speed]")
            .filter(|t| t.contains("measured "))
    });
    assert!(speed.contains("The plan predicted"), "{speed}");
    let shares = app.wait_text("[data-testid=server-shares]", secs(10));
    assert!(shares.contains("Attic Mac:"), "{shares}");
    // Each Mac's layers are the shares: no one "GPU layers" figure stands for them.
    let facts = app.wait_text("[data-testid=server-facts]", secs(10));
    assert!(!facts.contains("GPU layers"), "{facts}");
    assert_eq!(
        app.attr(
            "[data-testid=server-share][data-who='Attic Mac']",
            "data-answering"
        )
        .as_deref(),
        Some("true")
    );
    assert_eq!(
        app.wait_text("[data-testid=api-url]", secs(10)),
        url,
        "apps keep one address"
    );
    let pooled = servers();
    let rpc: Vec<&String> = pooled
        .iter()
        .filter_map(|a| a.windows(2).find(|w| w[0] == "--rpc").map(|w| &w[1]))
        .collect();
    assert_eq!(
        rpc.len(),
        1,
        "one server split with the other Mac: {pooled:?}"
    );
    assert!(rpc[0].starts_with("127.0.0.1:"), "{rpc:?}");
    assert!(!answer(&url).is_empty(), "the split model said nothing");
    app.js("document.querySelector('[data-testid=server-state]').scrollIntoView()");
    app.screenshot("server-split");
    // The choice stands: Stop and Start (as the tray's item does) serves it split
    // again with the same Mac, not alone.
    app.click("[data-testid=server-toggle]");
    app.wait_server("stopped", secs(30));
    let standing = app.wait_text("[data-testid=server-serves-with]", secs(10));
    assert!(standing.contains("Served with Attic Mac"), "{standing}");
    app.click("[data-testid=server-toggle]");
    app.wait("the split model to be ready again", secs(180), || {
        (app.server_is("ready") && app.text("[data-testid=server-shares]").is_some()).then_some(())
    });
    let again = servers();
    assert_eq!(
        again
            .iter()
            .filter(|a| a.iter().any(|x| x == "--rpc"))
            .count(),
        1,
        "started again without the other Mac: {again:?}"
    );
    attic.quit();
    let lost = app.wait_text("[data-testid=server-lost]", secs(60));
    assert!(lost.contains("Attic Mac stopped answering"), "{lost}");
    assert!(lost.contains("its owner stopped lending it"), "{lost}");
    assert!(lost.contains("does not fit"), "{lost}");
    assert!(!app.server_is("ready"), "the server runs over a lost Mac");
    assert!(
        app.text("[data-testid=serve-without]").is_none(),
        "offered to serve without it, though it does not fit"
    );
    app.js("document.querySelector('[data-testid=server-state]').scrollIntoView()");
    app.screenshot("server-mac-lost");
    app.click("[data-testid=mac-unpair]");
    app.wait("the unpaired Mac gone", secs(30), || {
        app.text("[data-testid=macs-none]")
    });
    assert!(
        app.text("[data-testid=server-serves-with]").is_none(),
        "still served with an unpaired Mac"
    );

    // Route first: a paired Mac that serves the model already gets this computer's apps'
    // requests whole, on the same address; no llama-server runs here for it. When it
    // quits, the route stops and says which Mac.
    let den = lend_from(
        &t.path().join("den-helper"),
        [127, 0, 0, 6],
        "Den Mac",
        Some(&sample),
    );
    den.pair_in(&app, "Den Mac");
    app.click("[data-testid=mac-serve-with]");
    app.type_into("[data-testid=serve-with-memory]", "300MB");
    app.click("[data-testid=serve-with-plan]");
    let plan = app.wait_text("[data-testid=serve-with-lines]", secs(60));
    assert!(plan.contains("Den Mac serves it already"), "{plan}");
    app.click("[data-testid=serve-with-go]");
    let routed = app.wait("the route to be ready", secs(60), || {
        app.server_is("ready")
            .then(|| app.text("[data-testid=server-routed]"))
            .flatten()
    });
    assert!(routed.contains("Answered by Den Mac"), "{routed}");
    assert_eq!(
        app.wait_text("[data-testid=api-url]", secs(10)),
        url,
        "apps keep one address"
    );
    let here = servers();
    assert!(
        here.iter().all(|a| has_device_none(a)),
        "a llama-server runs here for a routed model: {here:?}"
    );
    assert!(!answer(&url).is_empty(), "the routed model said nothing");
    app.js("document.querySelector('[data-testid=server-state]').scrollIntoView()");
    app.screenshot("server-routed");
    den.quit();
    let lost = app.wait_text("[data-testid=server-lost]", secs(60));
    assert!(lost.contains("Den Mac stopped answering"), "{lost}");
    assert!(
        !app.server_is("ready"),
        "the screen says running over a lost route"
    );
    // Started again while the Mac it was served with is gone (it does not fit here under
    // the memory the owner gave): refused, naming the Mac and the way to serve alone.
    app.click("[data-testid=server-toggle]");
    let refused = app.wait_text("[role=alert]", secs(120));
    assert!(refused.contains("Den Mac"), "{refused}");
    assert!(refused.contains("alone"), "{refused}");
    assert!(!app.server_is("ready"));
    // "Serve on this computer alone": served here, the Mac forgotten for the server but
    // still paired.
    app.click("[data-testid=serve-alone]");
    app.wait_server("ready", secs(120));
    assert!(app.text("[data-testid=server-lost]").is_none());
    assert!(app.text("[data-testid=server-routed]").is_none());
    assert!(app.text("[data-testid=server-serves-with]").is_none());
    assert!(
        app.text("[data-testid=macs-none]").is_none(),
        "unpaired by Serve alone"
    );
    assert_eq!(app.wait_text("[data-testid=api-url]", secs(10)), url);
    assert!(
        !answer(&url).is_empty(),
        "the model served alone said nothing"
    );
    app.click("[data-testid=mac-unpair]");

    // A Mac that goes away between the plan and the start: the start fails saying so,
    // and the server that ran serves again, on the same address, alone.
    let shed = lend_from(
        &t.path().join("shed-helper"),
        [127, 0, 0, 7],
        "Shed Mac",
        None,
    );
    shed.pair_in(&app, "Shed Mac");
    app.click("[data-testid=mac-serve-with]");
    app.type_into("[data-testid=serve-with-memory]", "300MB");
    app.click("[data-testid=serve-with-plan]");
    app.wait("the plan with the shed Mac", secs(60), || {
        app.text("[data-testid=serve-with-lines]")
            .filter(|t| t.contains("split by its"))
    });
    shed.quit();
    app.click("[data-testid=serve-with-go]");
    let failed = app.wait_text("[data-testid=serve-with] .error", secs(120));
    assert!(failed.contains("Shed Mac"), "{failed}");
    assert!(
        failed.contains("The model served before serves again"),
        "{failed}"
    );
    app.wait_server("ready", secs(120));
    assert_eq!(app.wait_text("[data-testid=api-url]", secs(10)), url);
    assert!(app.text("[data-testid=server-shares]").is_none());
    assert!(
        !answer(&url).is_empty(),
        "the model served before said nothing"
    );
    app.click("[data-testid=mac-unpair]");

    // "Benchmark my Mac" while both servers run: they step aside (the benchmark has the
    // machine to itself) and come back; the tray and the Server screen
    // follow the served model, not the benchmark's server.
    app.click("button[data-screen=home]");
    app.click("[data-testid=bench-quality]");
    app.click("[data-testid=bench-start]");
    app.wait_text("[data-testid=bench-progress]", secs(60));
    app.wait_text("[data-testid=bench-result]", secs(600));
    app.click("button[data-screen=server]");
    app.wait_server("ready", secs(120));
    app.wait("the second model to be back", secs(120), || {
        second_ready().then_some(())
    });
    for base in [&url, &second_url] {
        let back = reqwest::blocking::get(format!("{base}/models")).unwrap();
        assert!(back.status().is_success(), "{base}: {}", back.status());
    }
    app.click("[data-testid=second-toggle]");
    app.wait("the second model to stop", secs(30), || {
        (app.attr("[data-testid=second-state]", "data-state")
            .as_deref()
            == Some("stopped"))
        .then_some(())
    });
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", second_port)).is_err(),
        "the second port still answers after Stop"
    );
    app.click("[data-testid=server-toggle]");
    app.wait_server("stopped", secs(30));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port still answers after Stop"
    );

    // Cleanup: the planted leftovers are listed and reclaimed to the Trash.
    app.click("button[data-screen=cleanup]");
    app.wait_text("[data-testid=reclaim]", secs(60));
    app.screenshot("cleanup");
    app.click("[data-testid=reclaim]");
    let reclaimed = app.wait_text("[data-testid=reclaimed]", secs(60));
    assert!(reclaimed.contains("6.00 MB"), "reclaimed: {reclaimed}");
    for p in &planted {
        assert!(!p.exists(), "{} is still there", p.display());
    }
    app.wait_text("[data-testid=nothing-to-reclaim]", secs(30));
    app.screenshot("cleanup-done");

    // The remaining screens render.
    app.click("button[data-screen=models]");
    app.wait_text("[data-testid=catalog] tbody tr", secs(60));
    app.screenshot("models");
    app.click("button[data-screen=settings]");
    app.wait_text("#port", secs(10));
    let runtime = app.wait_text("[data-testid=runtime-line]", secs(30));
    assert!(runtime.contains("Model server: llama-server"), "{runtime}");
    app.screenshot("settings");
    // A system port is refused with a reason, and the saved port stays.
    app.js(
        "const e = document.querySelector('#port'); e.value = '80'; \
            e.dispatchEvent(new Event('input', { bubbles: true }));",
    );
    app.click("[data-testid=port-save]");
    let refused = app.wait_text(".error[data-code=settings]", secs(10));
    assert!(refused.contains("Port 80 is reserved"), "{refused}");
    let saved = std::fs::read_to_string(home.join("settings.toml")).unwrap();
    assert!(saved.contains(&format!("port = {port}")), "{saved}");
    // The second model cannot take the server's port: refused, both ports kept.
    app.js(&format!(
        "for (const [id, v] of [['#port', '{port}'], ['#second-port', '{port}']]) {{ \
           const e = document.querySelector(id); e.value = v; \
           e.dispatchEvent(new Event('input', {{ bubbles: true }})); }}"
    ));
    app.click("[data-testid=port-save]");
    app.wait("the shared port to be refused", secs(10), || {
        app.text(".error[data-code=settings]")
            .filter(|t| t.contains("cannot share a port"))
    });
    let saved = std::fs::read_to_string(home.join("settings.toml")).unwrap();
    assert!(
        saved.contains(&format!("second_port = {second_port}")),
        "{saved}"
    );
    // One web site may be allowed to use the server; a list is refused with a reason.
    let set_origin = |v: &str| {
        app.js(&format!(
            "const e = document.querySelector('#origin'); e.value = '{v}'; \
             e.dispatchEvent(new Event('input', {{ bubbles: true }}));"
        ));
        app.click("[data-testid=origin-save]");
    };
    set_origin("https://a.example,https://b.example");
    let refused = app.wait_text(".error[data-code=settings]", secs(10));
    assert!(refused.contains("not a single site"), "{refused}");
    set_origin("https://app.example");
    app.wait("the site to be saved", secs(10), || {
        let saved = std::fs::read_to_string(home.join("settings.toml")).ok()?;
        saved
            .contains("cors_origin = \"https://app.example\"")
            .then_some(())
    });

    // Ctrl-W closes the window: its WebKit processes go, the app stays in the menu bar.
    let pid = app.app_pid().expect("the app is running");
    app.press_ctrl_w();
    app.wait("the webview to be destroyed", secs(20), || {
        let webkit = support::tree(pid)
            .into_iter()
            .any(|p| support::alive(p) && support::comm(p).starts_with("WebKitWebProces"));
        (!webkit).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        support::alive(pid) && support::comm(pid) == "kindling-deskto",
        "the app quit when its window closed"
    );
}
