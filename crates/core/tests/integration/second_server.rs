//! Two servers at once, as the field report's owner ran them: the everyday model where
//! Kindling plans it, and a second one on the processor only, on its own port. The real
//! llama-server twice, with the sample model.

use kindling_core::hardware::HardwareProfile;
use kindling_core::server::{Purpose, ServerState};
use kindling_core::{Cancel, ErrorCode};

use kindling_testsupport::process::cmdline;

use super::{core_in, door, sample_model, say_hi, server_pids, SERVER_LOCK};

fn has_pair(args: &[String], flag: &str, value: &str) -> bool {
    args.windows(2).any(|w| w[0] == flag && w[1] == value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_model_serves_on_the_processor_on_its_own_port_beside_the_first() {
    let _guard = SERVER_LOCK.lock().await;
    let home = tempfile::tempdir().unwrap();
    let core = core_in(home.path()).await;
    let mut events = core.events().subscribe();
    let (first, _) = core
        .start_serving(&sample_model(), None, &Cancel::new())
        .await
        .unwrap();
    let (second, registered) = core
        .start_second(&sample_model(), None, Some(first.config()), &Cancel::new())
        .await
        .unwrap();
    assert_ne!(first.port(), second.port());
    assert_eq!(registered.path, sample_model());

    // Both answer, each on its own address.
    for server in [&first, &second] {
        let body = say_hi(&door(server)).await;
        assert!(
            body["choices"][0]["message"]["content"].is_string(),
            "{}: {body}",
            door(server)
        );
    }
    // The second one was told to use no GPU; the first was not.
    let second_args = cmdline(second.pid());
    assert!(
        has_pair(&second_args, "--device", "none"),
        "{second_args:?}"
    );
    assert!(
        has_pair(&second_args, "--n-gpu-layers", "0"),
        "{second_args:?}"
    );
    let first_args = cmdline(first.pid());
    assert!(
        !first_args.contains(&"--device".to_string()),
        "{first_args:?}"
    );
    // Front ends tell the two apart by purpose.
    let mut second_ready = false;
    while let Ok(e) = events.try_recv() {
        if let kindling_core::Event::ServerState { server, state } = e {
            second_ready |= server.purpose == Purpose::Second
                && server.id == second.id().id
                && matches!(state, ServerState::Ready { .. });
        }
    }
    assert!(second_ready, "no ready event for the second server");
    assert_eq!(server_pids(home.path()).len(), 2, "both are recorded");

    second.stop().await;
    let body = say_hi(&door(&first)).await;
    assert!(
        body["choices"][0]["message"]["content"].is_string(),
        "the first one runs on after the second stops: {body}"
    );
    first.stop().await;
}

/// A Mac with 4 GB of memory (what a 2014 Mac mini or a 2015 MacBook Air shipped with)
/// and no GPU Kindling can use, planned for instead of this machine.
fn mac_with_4gb() -> HardwareProfile {
    HardwareProfile {
        os: "macos".into(),
        os_version: Some("12.7".into()),
        arch: "x86_64".into(),
        model_identifier: Some("Macmini7,1".into()),
        cpu_brand: "Intel(R) Core(TM) i5-4260U CPU @ 1.40GHz".into(),
        physical_cores: Some(2),
        logical_cores: 4,
        ram_total_bytes: 4 << 30,
        ram_available_bytes: 2 << 30,
        gpus: vec![],
        vulkan_devices: vec![],
    }
}

/// A Kindling in `home` that plans for [`mac_with_4gb`], where the owner serves with a
/// long context (the sample's cache alone takes ~300 MB): one sample fits, two do not.
async fn planned_for_a_4gb_mac(home: &std::path::Path) -> kindling_core::Core {
    let core = core_in(home).await;
    core.update_settings(|s| s.ctx_size = 16384).unwrap();
    core.assume_hardware(mac_with_4gb());
    core
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_that_does_not_fit_together_is_refused_before_anything_starts() {
    let _guard = SERVER_LOCK.lock().await;
    let home = tempfile::tempdir().unwrap();
    let core = planned_for_a_4gb_mac(home.path()).await;
    let alone = core.fit_beside(&sample_model(), None, true).await.unwrap();
    assert!(alone.fits, "alone it fits: {}", alone.why);

    let (first, _) = core
        .start_serving(&sample_model(), None, &Cancel::new())
        .await
        .unwrap();
    assert_eq!(first.config().ctx_size, 16384);
    let port = kindling_core::server::free_port().unwrap();
    let refused = core
        .start_second(
            &sample_model(),
            Some(port),
            Some(first.config()),
            &Cancel::new(),
        )
        .await
        .err()
        .expect("the pair does not fit in 4 GB");
    assert_eq!(refused.code(), ErrorCode::DoesNotFit);
    let message = refused.to_string();
    assert!(
        message.contains("does not fit beside the model the server runs")
            && message.contains("GB")
            && message.contains("pick a smaller second model"),
        "{message}"
    );
    assert!(
        !kindling_core::server::port_is_busy("127.0.0.1", port),
        "nothing listens on the second port"
    );
    assert_eq!(
        server_pids(home.path()),
        vec![first.pid()],
        "only the first runs"
    );
    first.stop().await;
}

/// The other order: the second model already runs on the processor, and the owner starts
/// the menu-bar model. On the 4 GB Mac the pair is refused the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_model_is_refused_beside_a_second_that_leaves_no_room() {
    let _guard = SERVER_LOCK.lock().await;
    let home = tempfile::tempdir().unwrap();
    let core = planned_for_a_4gb_mac(home.path()).await;
    let (second, _) = core
        .start_second(&sample_model(), None, None, &Cancel::new())
        .await
        .unwrap();
    let refused = core
        .check_beside_second(&sample_model(), second.config())
        .await
        .expect_err("the pair does not fit in 4 GB");
    assert_eq!(refused.code(), ErrorCode::DoesNotFit);
    let message = refused.to_string();
    assert!(
        message.contains("does not fit beside the second model")
            && message.contains("Stop the second model first"),
        "{message}"
    );
    second.stop().await;
}
