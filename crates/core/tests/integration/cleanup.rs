//! Cleanup and found-in-place models on real folders: Ollama stores and Hugging Face
//! caches built file by file the way those tools lay them out.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kindling_core::cleanup::{self, ApplyMode, Reason, Stores};
use kindling_core::store::found::{self, Roots};
use proptest::prelude::*;

const HOUR: Duration = Duration::from_secs(3600);

fn hex(n: u64) -> String {
    format!("{:064x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn write(path: &Path, bytes: &[u8], age: Duration) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

fn ollama_blob(root: &Path, n: u64, len: usize, age: Duration) -> PathBuf {
    let p = root.join("blobs").join(format!("sha256-{}", hex(n)));
    write(&p, &vec![7u8; len], age);
    p
}

fn ollama_manifest(root: &Path, model: &str, tag: &str, config: u64, layers: &[u64]) -> PathBuf {
    let layer = |n: &u64, t: &str| serde_json::json!({"mediaType": t, "digest": format!("sha256:{}", hex(*n)), "size": 10});
    let m = serde_json::json!({
        "schemaVersion": 2,
        "config": layer(&config, "application/vnd.docker.container.image.v1+json"),
        "layers": layers.iter().enumerate().map(|(i, n)| layer(n, if i == 0 { "application/vnd.ollama.image.model" } else { "application/vnd.ollama.image.params" })).collect::<Vec<_>>(),
    });
    let p = root
        .join("manifests/registry.ollama.ai/library")
        .join(model)
        .join(tag);
    write(&p, m.to_string().as_bytes(), 2 * HOUR);
    p
}

fn ollama_only(root: &Path) -> Stores {
    Stores {
        ollama: Some(root.to_path_buf()),
        ..Stores::default()
    }
}

fn paths_for(plan: &cleanup::Plan, reason: Reason) -> Vec<PathBuf> {
    plan.items
        .iter()
        .filter(|i| i.reason == reason)
        .map(|i| i.path.clone())
        .collect()
}

/// The system Trash lives under XDG_DATA_HOME; point it at a temp folder once, on the
/// same file system as the test stores, so trashing is a rename there.
fn trash_home() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = std::env::temp_dir().join(format!("kindling-test-trash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::env::set_var("XDG_DATA_HOME", dir);
    });
}

#[test]
fn ollama_orphans_and_partials_are_planned_and_nothing_else() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("ollama");
    let used = ollama_blob(&root, 1, 1000, 2 * HOUR);
    let config = ollama_blob(&root, 2, 10, 2 * HOUR);
    ollama_manifest(&root, "llama3.2", "latest", 2, &[1]);
    let orphan = ollama_blob(&root, 3, 5000, 2 * HOUR);
    let young = ollama_blob(&root, 4, 5000, Duration::from_secs(60));
    let partial = root
        .join("blobs")
        .join(format!("sha256-{}-partial-0", hex(5)));
    write(&partial, &[1; 300], 2 * HOUR);
    write(&root.join("blobs/sha256-short"), b"x", 2 * HOUR);
    write(&root.join("blobs/notes.txt"), b"x", 2 * HOUR);
    // A blob name that is a link to a file outside the store: never followed, never planned.
    let outside = t.path().join("precious.bin");
    write(&outside, b"keep me", 2 * HOUR);
    std::os::unix::fs::symlink(
        &outside,
        root.join("blobs").join(format!("sha256-{}", hex(6))),
    )
    .unwrap();

    let plan = cleanup::scan(&ollama_only(&root), SystemTime::now());
    assert_eq!(
        paths_for(&plan, Reason::OllamaOrphanBlob),
        std::slice::from_ref(&orphan)
    );
    assert_eq!(
        paths_for(&plan, Reason::OllamaPartial),
        std::slice::from_ref(&partial)
    );
    assert_eq!(plan.items.len(), 2);
    assert_eq!(plan.total_bytes(), 5300);
    assert!(plan.warnings.is_empty());

    let applied = cleanup::apply(
        &plan,
        &ollama_only(&root),
        ApplyMode::Delete,
        SystemTime::now(),
    );
    assert_eq!(applied.bytes, 5300);
    assert!(!orphan.exists() && !partial.exists());
    assert!(used.exists() && config.exists() && young.exists() && outside.exists());
}

#[test]
fn a_broken_manifest_leaves_the_whole_ollama_store_alone() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("ollama");
    ollama_blob(&root, 3, 5000, 2 * HOUR);
    let bad = root.join("manifests/registry.ollama.ai/library/broken/latest");
    write(&bad, b"{ not json", 2 * HOUR);
    let plan = cleanup::scan(&ollama_only(&root), SystemTime::now());
    assert!(plan.items.is_empty());
    assert_eq!(plan.warnings.len(), 1);
    assert!(
        plan.warnings[0].contains(&bad.display().to_string()),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn a_blob_referenced_after_the_plan_is_not_removed() {
    trash_home();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("ollama");
    let a = ollama_blob(&root, 3, 100, 2 * HOUR);
    let b = ollama_blob(&root, 4, 200, 2 * HOUR);
    let plan = cleanup::scan(&ollama_only(&root), SystemTime::now());
    assert_eq!(plan.items.len(), 2);
    // Ollama pulls a model that uses blob 3 between plan and apply.
    ollama_manifest(&root, "new", "latest", 4, &[3]);
    let applied = cleanup::apply(
        &plan,
        &ollama_only(&root),
        ApplyMode::Trash,
        SystemTime::now(),
    );
    assert!(applied.removed.is_empty());
    assert_eq!(applied.skipped.len(), 2);
    assert!(a.exists() && b.exists());
}

#[test]
fn applying_moves_to_the_trash_and_refuses_tampered_paths() {
    trash_home();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("ollama");
    let orphan = ollama_blob(&root, 9, 4096, 2 * HOUR);
    let mut plan = cleanup::scan(&ollama_only(&root), SystemTime::now());
    let outside = t.path().join("elsewhere.bin");
    write(&outside, b"not yours", 2 * HOUR);
    let mut forged = plan.items[0].clone();
    forged.path = outside.clone();
    plan.items.push(forged);
    let applied = cleanup::apply(
        &plan,
        &ollama_only(&root),
        ApplyMode::Trash,
        SystemTime::now(),
    );
    assert_eq!(applied.removed.len(), 1);
    assert_eq!(applied.bytes, 4096);
    assert!(!orphan.exists());
    assert!(
        outside.exists(),
        "a path the scan does not produce is never touched"
    );
    let trashed = std::env::var("XDG_DATA_HOME").unwrap();
    let in_trash = std::fs::read_dir(Path::new(&trashed).join("Trash/files"))
        .unwrap()
        .count();
    assert!(
        in_trash >= 1,
        "the orphan went to the Trash, where it can be restored"
    );
}

#[test]
fn huggingface_orphans_incomplete_and_detached_revisions() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("hub");
    let repo = root.join("models--org--model-GGUF");
    let blob = |name: &str, len: usize, age: Duration| {
        let p = repo.join("blobs").join(name);
        write(&p, &vec![1u8; len], age);
        p
    };
    let current = blob(&hex(1), 1000, 2 * HOUR);
    let old_only = blob(&hex(2), 700, 2 * HOUR);
    let orphan = blob(&hex(3), 300, 2 * HOUR);
    let incomplete = blob(&format!("{}.incomplete", hex(4)), 50, 2 * HOUR);
    let link = |rev: &str, file: &str, target: &str| {
        let p = repo.join("snapshots").join(rev).join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    };
    link(
        "rev-new",
        "model.Q4_K_M.gguf",
        &format!("../../blobs/{}", hex(1)),
    );
    link(
        "rev-old",
        "model.Q4_K_M.gguf",
        &format!("../../blobs/{}", hex(2)),
    );
    link("rev-old", "README.md", &format!("../../blobs/{}", hex(1)));
    write(&repo.join("refs/main"), b"rev-new", 2 * HOUR);

    let stores = Stores {
        huggingface: Some(root.clone()),
        ..Stores::default()
    };
    let plan = cleanup::scan(&stores, SystemTime::now());
    assert_eq!(paths_for(&plan, Reason::HfOrphanBlob), [orphan]);
    assert_eq!(paths_for(&plan, Reason::HfIncomplete), [incomplete]);
    let detached = paths_for(&plan, Reason::HfDetachedRevision);
    assert!(
        detached.contains(&old_only) && detached.contains(&repo.join("snapshots/rev-old")),
        "{detached:?}"
    );
    assert!(!plan.items.iter().any(|i| i.path == current));

    let found = found::scan(&Roots {
        huggingface: Some(root.clone()),
        ..Roots::default()
    });
    assert_eq!(
        found.len(),
        1,
        "one copy, from the current revision: {found:?}"
    );
    assert_eq!(found[0].name, "org/model-GGUF/model.Q4_K_M.gguf");
    assert_eq!(found[0].path, current);
    assert_eq!(found[0].sha256.as_deref(), Some(hex(1).as_str()));
}

#[test]
fn a_snapshot_link_kindling_cannot_follow_leaves_its_repository_alone() {
    // Before: such a link was skipped, so the blob it may keep alive looked unused.
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("hub");
    let mk = |repo: &str, n: u64| {
        let dir = root.join(repo);
        write(&dir.join("blobs").join(hex(n)), &[1u8; 100], 2 * HOUR);
        write(&dir.join("refs/main"), b"rev", 2 * HOUR);
        std::fs::create_dir_all(dir.join("snapshots/rev")).unwrap();
        dir
    };
    let odd = mk("models--org--odd", 1);
    std::os::unix::fs::symlink(
        "/somewhere/else/model.gguf",
        odd.join("snapshots/rev/model.gguf"),
    )
    .unwrap();
    let plain = mk("models--org--plain", 2);
    let plan = cleanup::scan(
        &Stores {
            huggingface: Some(root.clone()),
            ..Stores::default()
        },
        SystemTime::now(),
    );
    let planned: Vec<PathBuf> = plan.items.iter().map(|i| i.path.clone()).collect();
    assert_eq!(planned, vec![plain.join("blobs").join(hex(2))], "{plan:?}");
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("org/odd") && w.contains("snapshots/rev/model.gguf")),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn the_same_content_in_two_stores_is_reported_not_removed() {
    let t = tempfile::tempdir().unwrap();
    let oroot = t.path().join("ollama");
    ollama_blob(&oroot, 1, 100, 2 * HOUR);
    ollama_manifest(&oroot, "m", "latest", 1, &[1]);
    let repo = t.path().join("hub/models--a--b");
    write(&repo.join("blobs").join(hex(1)), &[7u8; 100], 2 * HOUR);
    std::fs::create_dir_all(repo.join("snapshots/r")).unwrap();
    std::os::unix::fs::symlink(
        format!("../../blobs/{}", hex(1)),
        repo.join("snapshots/r/m.gguf"),
    )
    .unwrap();
    write(&repo.join("refs/main"), b"r", 2 * HOUR);
    let plan = cleanup::scan(
        &Stores {
            ollama: Some(oroot),
            huggingface: Some(t.path().join("hub")),
            kindling: None,
            rpc_cache: None,
        },
        SystemTime::now(),
    );
    assert!(plan.items.is_empty());
    assert_eq!(plan.duplicates.len(), 1);
    assert_eq!(plan.duplicates[0].paths.len(), 2);
}

fn link_or_copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).unwrap();
    }
}

#[tokio::test]
async fn models_found_in_place_are_registered_and_their_deletion_noticed() {
    let t = tempfile::tempdir().unwrap();
    let sample = super::sample_model();
    let sha = kindling_core::store::sha256_file(&sample).unwrap();
    let oroot = t.path().join("ollama");
    let blob = oroot.join("blobs").join(format!("sha256-{sha}"));
    link_or_copy(&sample, &blob);
    let manifest = oroot.join("manifests/registry.ollama.ai/library/gemma3/270m");
    let m = serde_json::json!({"config": {"digest": format!("sha256:{}", hex(1)), "mediaType": "x"}, "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": format!("sha256:{sha}"), "size": 253113024}]});
    write(&manifest, m.to_string().as_bytes(), HOUR);
    let lm = t
        .path()
        .join("lmstudio/models/google/gemma/gemma-3-270m.gguf");
    link_or_copy(&sample, &lm);
    let fake = t.path().join("lmstudio/models/junk/notes.gguf");
    write(&fake, b"not a model", HOUR);

    let home = tempfile::tempdir().unwrap();
    let core = super::core_in(home.path()).await;
    let roots = Roots {
        ollama: Some(oroot.clone()),
        huggingface: None,
        lmstudio: vec![t.path().join("lmstudio/models")],
        folders: vec![],
    };
    let inv = core.inventory(&roots).await.unwrap();
    let names: Vec<(&str, &str)> = inv
        .installed
        .iter()
        .map(|m| (m.source.as_str(), m.name.as_str()))
        .collect();
    assert!(names.contains(&("ollama", "gemma3:270m")), "{names:?}");
    assert!(
        names.contains(&("lmstudio", "google/gemma/gemma-3-270m.gguf")),
        "{names:?}"
    );
    assert_eq!(inv.unusable.len(), 1);
    assert!(
        inv.unusable[0].1.contains("not a GGUF"),
        "{:?}",
        inv.unusable
    );
    let ollama_model = inv.installed.iter().find(|m| m.source == "ollama").unwrap();
    assert_eq!(ollama_model.path, blob, "used where it is, no copy");
    assert_eq!(ollama_model.quant.as_deref(), Some("Q4_K_M"));

    // Ollama removes the model: Kindling says so instead of failing later.
    std::fs::remove_file(&manifest).unwrap();
    std::fs::remove_file(&blob).unwrap();
    let inv = core.inventory(&roots).await.unwrap();
    assert_eq!(inv.missing.len(), 1);
    assert!(
        inv.missing[0]
            .message
            .contains("gemma3:270m is no longer in Ollama"),
        "{}",
        inv.missing[0].message
    );
    let plan = core.remove_model(inv.missing[0].id, false).await.unwrap();
    assert!(plan.contains("Forget"), "{plan}");
    core.remove_model(inv.missing[0].id, true).await.unwrap();
    assert!(core.inventory(&roots).await.unwrap().missing.is_empty());
}

/// The plan for Kindling's own models folder alone (this machine's Ollama and Hugging
/// Face stores are not the test's).
async fn kindling_only_plan(core: &kindling_core::Core) -> cleanup::Plan {
    let stores = core.cleanup_stores().await.unwrap();
    cleanup::scan(
        &Stores {
            kindling: stores.kindling,
            ..Stores::default()
        },
        SystemTime::now(),
    )
}

/// A download in Kindling's models folder that is paused: its `.part` must stay.
async fn paused_download(core: &kindling_core::Core, models: &Path) {
    let wanted_dest = models.join("org--b/b.gguf");
    write(
        &kindling_core::download::partial_path(&wanted_dest),
        &[0; 1000],
        2 * HOUR,
    );
    core.db()
        .start_download(
            "org/b",
            "b.gguf",
            "http://x",
            &wanted_dest.to_string_lossy(),
            5000,
            &hex(1),
            "2026-01-01T00:00:00Z",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn kindling_cleanup_keeps_wanted_partials_and_the_users_own_models() {
    let home = tempfile::tempdir().unwrap();
    let core = super::core_in(home.path()).await;
    let models = home.path().join("models");
    let abandoned = models.join("org--a/a.gguf.part");
    write(&abandoned, &[0; 1000], 2 * HOUR);
    paused_download(&core, &models).await;
    let junk = models.join("stray.tmp");
    write(&junk, &[0; 10], 2 * HOUR);
    let dropped_in = models.join("mine.gguf");
    link_or_copy(&super::sample_model(), &dropped_in);

    let plan = kindling_only_plan(&core).await;
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap();
    let listed: Vec<PathBuf> = plan.items.iter().map(|i| i.path.clone()).collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed.contains(&canon(&abandoned)) && listed.contains(&canon(&junk)),
        "{listed:?}"
    );
}

#[tokio::test]
async fn cleanup_behind_symlinks_keeps_partials_and_the_users_own_models() {
    // macOS: every temp folder is behind /var → /private/var; owners link their models
    // folder to an external disk. Before, paths from the database (as given) and from
    // the scan (resolved) differed, and a paused download's .part and a model the owner
    // dropped in were planned for the Trash.
    let t = tempfile::tempdir().unwrap();
    let real_home = t.path().join("real-home");
    let external = t.path().join("external-disk/models");
    std::fs::create_dir_all(&real_home).unwrap();
    std::fs::create_dir_all(&external).unwrap();
    std::os::unix::fs::symlink(&external, real_home.join("models")).unwrap();
    let home = t.path().join("home-link");
    std::os::unix::fs::symlink(&real_home, &home).unwrap();

    let core = super::core_in(&home).await;
    let models = home.join("models");
    paused_download(&core, &models).await;
    let dropped_in = models.join("mine.gguf");
    link_or_copy(&super::sample_model(), &dropped_in);
    let registered = models.join("registered.gguf");
    link_or_copy(&super::sample_model(), &registered);
    kindling_core::store::register(core.db(), &registered)
        .await
        .unwrap();
    for f in [&dropped_in, &registered] {
        let file = std::fs::File::options().write(true).open(f).unwrap();
        file.set_modified(SystemTime::now() - 2 * HOUR).unwrap();
    }
    let abandoned = models.join("org--a/a.gguf.part");
    write(&abandoned, &[0; 1000], 2 * HOUR);

    let plan = kindling_only_plan(&core).await;
    let listed: Vec<PathBuf> = plan.items.iter().map(|i| i.path.clone()).collect();
    assert_eq!(
        listed,
        vec![std::fs::canonicalize(&abandoned).unwrap()],
        "only the abandoned partial may go"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// For random Ollama stores: no referenced blob is ever planned, every old orphan is,
    /// and a link pointing out of the store is never followed or planned.
    #[test]
    fn ollama_plans_are_exactly_the_orphans(
        n_blobs in 1u64..40,
        manifests in proptest::collection::vec(proptest::collection::vec(0u64..40, 1..5), 0..8),
        links_out in 0u64..3,
    ) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("ollama");
        std::fs::create_dir_all(root.join("blobs")).unwrap();
        for n in 0..n_blobs {
            ollama_blob(&root, n, 10 + n as usize, 2 * HOUR);
        }
        let mut referenced = std::collections::BTreeSet::new();
        for (i, layers) in manifests.iter().enumerate() {
            ollama_manifest(&root, &format!("m{i}"), "latest", layers[0], layers);
            referenced.extend(layers.iter().copied());
        }
        let outside = t.path().join("outside.bin");
        write(&outside, b"x", 2 * HOUR);
        for k in 0..links_out {
            std::os::unix::fs::symlink(&outside, root.join("blobs").join(format!("sha256-{}", hex(1000 + k)))).unwrap();
        }
        let plan = cleanup::scan(&ollama_only(&root), SystemTime::now());
        let planned: std::collections::BTreeSet<PathBuf> = plan.items.iter().map(|i| i.path.clone()).collect();
        for n in 0..n_blobs {
            let p = root.join("blobs").join(format!("sha256-{}", hex(n)));
            prop_assert_eq!(planned.contains(&p), !referenced.contains(&n), "blob {}", n);
        }
        for k in 0..links_out {
            let link = root.join("blobs").join(format!("sha256-{}", hex(1000 + k)));
            prop_assert!(!planned.contains(&link));
        }
        prop_assert!(plan.items.iter().all(|i| i.path.starts_with(&root)));
        let applied = cleanup::apply(&plan, &ollama_only(&root), ApplyMode::Delete, SystemTime::now());
        prop_assert_eq!(applied.removed.len(), plan.items.len());
        prop_assert!(outside.exists());
        for n in &referenced {
            if *n < n_blobs {
                let kept = root.join("blobs").join(format!("sha256-{}", hex(*n))).exists();
                prop_assert!(kept, "referenced blob {} was removed", n);
            }
        }
    }
}

/// The tensors this Mac kept while lending memory to another Mac are listed (an hour
/// after their last use), and go to the Trash like the rest.
#[test]
fn the_rpc_tensor_cache_is_listed_once_an_hour_old() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("rpc-cache/rpc");
    write(&cache.join("0a1b2c3d4e5f6789"), &[0u8; 4096], 2 * HOUR);
    write(&cache.join("fresh"), &[0u8; 100], Duration::ZERO);
    let plan = cleanup::scan(
        &Stores {
            rpc_cache: Some(t.path().join("rpc-cache")),
            ..Stores::default()
        },
        SystemTime::now(),
    );
    assert_eq!(plan.items.len(), 1, "{:?}", plan.items);
    assert_eq!(plan.items[0].reason, cleanup::Reason::KindlingRpcCache);
    assert_eq!(plan.items[0].bytes, 4096);
}
