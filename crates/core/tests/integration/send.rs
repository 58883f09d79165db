//! Every public `Core` future is `Send`, checked at compile time (as tokio does): a
//! front end spawns them as tasks, never `spawn_blocking(block_on(..))`, which would
//! start llama-server from a short-lived blocking thread (see `server::process`).
//! The futures are made and dropped, never run.

use std::path::Path;

use kindling_core::bench::{QualityRequest, SpeedOptions, SpeedRequest};
use kindling_core::cleanup::ApplyMode;
use kindling_core::download::{Control, Policy};
use kindling_core::recommend::Goal;
use kindling_core::store::found::Roots;
use kindling_core::store::PullRequest;
use kindling_core::{Cancel, Core};

fn assert_send<T: Send>(_: T) {}

#[tokio::test]
async fn every_public_core_future_is_send() {
    let home = tempfile::tempdir().unwrap();
    let core: &Core = &super::core_in(home.path()).await;
    let (c, m) = (&Cancel::new(), Path::new("/nonexistent/model.gguf"));
    let speed = || SpeedRequest {
        model: m.to_path_buf(),
        options: SpeedOptions::default(),
        port: None,
        probe_bandwidth: false,
    };
    let quality = || QualityRequest {
        model: m.to_path_buf(),
        quick: true,
        think: None,
        resume: None,
        suite: None,
    };
    assert_send(Core::open(kindling_core::Paths::new(home.path())));
    assert_send(core.detect());
    assert_send(core.hardware(Vec::new()));
    assert_send(core.start_server(m, None, c));
    assert_send(core.start_server_with(m, None, Some(0), c));
    assert_send(core.start_serving(m, None, c));
    assert_send(core.bench_speed(speed(), c));
    assert_send(core.bench_speed_keeping_server(speed(), c));
    assert_send(core.bench_quality(quality(), c));
    assert_send(core.bench_quality_on(quality(), None, c));
    assert_send(core.quality_report(1, None));
    assert_send(core.rescore(1, None));
    assert_send(core.tune(m, c));
    assert_send(core.recommend(Goal::Conversational));
    assert_send(core.machine_profile());
    assert_send(core.predict_speed(m));
    assert_send(core.preferred_model());
    assert_send(core.cleanup_stores());
    assert_send(core.cleanup_plan());
    assert_send(core.cleanup_apply("x", &[], ApplyMode::Trash));
    assert_send(core.inventory(&Roots::default()));
    assert_send(core.remove_model(1, false));
    let req = PullRequest {
        repo: "org/name".into(),
        file: "model.gguf".into(),
        policy: Policy::default(),
        endpoint: None,
        revision: None,
        expect: None,
    };
    assert_send(core.pull(&req, &Control::default()));
}
