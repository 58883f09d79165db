//! The first use of a GPU for a kind of model is checked once per runtime build; a GPU
//! that streams garbage where the processor answers properly is not used for that kind
//! of model again. This machine has no GPU: the field report's iMac (a Radeon over
//! MoltenVK, from outputs recorded on real Macs) stands in for the hardware, the real
//! llama-server with the sample model answers (on the processor here, whatever layers it
//! is given), and the garbage a broken backend streams is played by a stand-in.

use kindling_core::gpu_check::{self, CheckKey};
use kindling_core::Cancel;
use kindling_testsupport::{ChatFault, ChatStandIn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_gpu_use_of_a_kind_of_model_is_checked_once() {
    let _guard = super::SERVER_LOCK.lock().await;
    let home = tempfile::tempdir().unwrap();
    let core = super::core_in(home.path()).await;
    core.assume_hardware(super::trust::intel_mac_with_radeon());
    let info = core.locate_runtime().unwrap().info().await.unwrap();

    let (server, _) = core
        .start_server(&super::sample_model(), None, &Cancel::new())
        .await
        .unwrap();
    server.stop().await;
    let checks = core.gpu_checks().await.unwrap();
    assert_eq!(checks.len(), 1, "{checks:?}");
    let first = checks[0].clone();
    assert!(first.usable, "{first:?}");
    assert_eq!(first.architecture, "gemma3");
    assert!(first.device.contains("Radeon"), "{first:?}");
    assert_eq!(first.runtime, info.describe());

    // Asked once: the next start uses the stored verdict.
    let (again, _) = core
        .start_server(&super::sample_model(), None, &Cancel::new())
        .await
        .unwrap();
    assert_ne!(again.config().gpu_layers, Some(0));
    again.stop().await;
    assert_eq!(core.gpu_checks().await.unwrap(), vec![first]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_gpu_sends_that_kind_of_model_to_the_processor() {
    let _guard = super::SERVER_LOCK.lock().await;
    let home = tempfile::tempdir().unwrap();
    let core = super::core_in(home.path()).await;
    let hardware = super::trust::intel_mac_with_radeon();
    core.assume_hardware(hardware.clone());
    let runtime = core.locate_runtime().unwrap();
    let info = runtime.info().await.unwrap();
    let model = kindling_core::store::register(core.db(), &super::sample_model())
        .await
        .unwrap();
    let (config, _) = core.launch_config(&model, &hardware, 0);
    let key = CheckKey::for_launch(&info, &model, &hardware, &config)
        .expect("the plan puts the model on the Radeon");

    // The GPU's answer: what Gemma on MoltenVK streamed on an AMD card.
    let broken = ChatStandIn::start(ChatFault::StreamsUnusedForever).await;
    let on_gpu = gpu_check::ask(&reqwest::Client::new(), &broken.base_url()).await;
    // The processor's: the real server, every layer on the processor.
    let mut cpu_config = config.clone();
    cpu_config.gpu_layers = Some(0);
    let on_cpu = core
        .gpu_probe(&runtime, &model, cpu_config, &Cancel::new())
        .await
        .unwrap();
    assert_eq!(gpu_check::fault(&on_cpu), None, "{on_cpu:?}");
    let verdict = core
        .judge_gpu(key, &on_gpu, Some(&on_cpu))
        .await
        .unwrap()
        .expect("garbage is a verdict");
    assert!(!verdict.usable);
    assert!(
        verdict.reason.contains("garbage") && verdict.reason.contains("processor answered"),
        "{}",
        verdict.reason
    );

    // From now on that kind of model starts on the processor, without asking again.
    let (server, _) = core
        .start_server(&super::sample_model(), None, &Cancel::new())
        .await
        .unwrap();
    let args = server.config().to_args();
    server.stop().await;
    assert!(
        args.windows(2)
            .any(|w| w[0] == "--n-gpu-layers" && w[1] == "0")
            && args
                .windows(2)
                .any(|w| w[0] == "--device" && w[1] == "none"),
        "every layer and llama.cpp's op offload off the GPU: {args:?}"
    );
    assert_eq!(core.gpu_checks().await.unwrap(), vec![verdict]);

    // "Check the graphics card again": the verdict is forgotten, and asked anew.
    assert_eq!(core.forget_gpu_checks().await.unwrap(), 1);
    assert!(core.gpu_checks().await.unwrap().is_empty());
}
