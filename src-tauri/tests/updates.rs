//! Updates, through the real updater plugin inside a (mock-window) app, from a loopback
//! update server: a newer release with a valid signature is offered and its download
//! verifies; a tampered signature, an old release announced as new, and a downgrade are
//! refused, each with words an owner can act on. Signed here with a key made for the test.

use std::io::Cursor;
use std::path::Path;

use kindling_desktop::updates::{self, Found};
use kindling_testsupport::FileServer;
use serde_json::json;
use tauri_plugin_updater::UpdaterExt;

const REPO: &str = "kindling/releases";

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

struct Keys {
    pk: minisign::PublicKey,
    sk: minisign::SecretKey,
}

impl Keys {
    fn new() -> Keys {
        let minisign::KeyPair { pk, sk } =
            minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        Keys { pk, sk }
    }
    /// The public key as tauri.conf.json holds it.
    fn public(&self) -> String {
        b64(&self.pk.to_box().unwrap().to_string())
    }
    /// A `.sig` as the Tauri CLI writes it, signed for `version`.
    fn sign(&self, data: &[u8], version: &str) -> String {
        let trusted = format!("timestamp:1764201600\tfile:Kindling.deb\tversion:{version}");
        let sig = minisign::sign(
            Some(&self.pk),
            &self.sk,
            Cursor::new(data),
            Some(&trusted),
            Some("signature from tauri secret key"),
        )
        .unwrap();
        b64(&sig.to_string())
    }
}

fn app(pubkey: &str) -> tauri::App<tauri::test::MockRuntime> {
    let mut ctx = tauri::test::mock_context(tauri::test::noop_assets());
    // Plain http is allowed here only: the update server is on 127.0.0.1.
    ctx.config_mut().plugins.0.insert(
        "updater".into(),
        json!({"pubkey": pubkey, "endpoints": [], "requireSignedVersion": true,
               "dangerousInsecureTransportProtocol": true}),
    );
    ctx.config_mut().version = Some("0.1.0".into());
    tauri::test::mock_builder()
        .plugin(tauri_plugin_updater::Builder::new().build())
        .build(ctx)
        .unwrap()
}

fn manifest(dir: &Path, name: &str, version: &str, url: &str, signature: &str) {
    let m = json!({
        "version": version,
        "notes": "Faster downloads",
        "pub_date": "2026-11-27T12:00:00Z",
        "platforms": {"linux-x86_64": {"url": url, "signature": signature}},
    });
    std::fs::write(dir.join(name), m.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_newer_releases_are_offered_and_everything_else_is_refused() {
    let keys = Keys::new();
    let t = tempfile::tempdir().unwrap();
    let new = b"the 0.2.0 package".to_vec();
    let old = b"the 0.0.9 package".to_vec();
    std::fs::write(t.path().join("new.deb"), &new).unwrap();
    std::fs::write(t.path().join("old.deb"), &old).unwrap();
    // The manifests name the artifacts by the server's address: bind first, write them,
    // then serve.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url = |n: &str| format!("{base}/{REPO}/resolve/main/{n}");
    let dir = t.path();
    manifest(
        dir,
        "valid.json",
        "0.2.0",
        &url("new.deb"),
        &keys.sign(&new, "0.2.0"),
    );
    // The right artifact, with a signature over other bytes.
    manifest(
        dir,
        "tampered.json",
        "0.2.0",
        &url("new.deb"),
        &keys.sign(&old, "0.2.0"),
    );
    // An old, validly signed release announced as new.
    manifest(
        dir,
        "inflated.json",
        "0.3.0",
        &url("old.deb"),
        &keys.sign(&old, "0.0.9"),
    );
    // A real downgrade.
    manifest(
        dir,
        "downgrade.json",
        "0.0.9",
        &url("old.deb"),
        &keys.sign(&old, "0.0.9"),
    );
    let names = [
        "new.deb",
        "old.deb",
        "valid.json",
        "tampered.json",
        "inflated.json",
        "downgrade.json",
    ];
    let files: Vec<(String, std::path::PathBuf)> = names
        .iter()
        .map(|n| (format!("{REPO}/{n}"), dir.join(n)))
        .collect();
    let refs: Vec<(&str, std::path::PathBuf)> =
        files.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    let server = FileServer::start_on(listener, &refs).await;

    let app = app(&keys.public());
    let check = |manifest: &str| {
        let endpoint = format!("{}/{REPO}/resolve/main/{manifest}", server.base_url());
        let updater = app
            .handle()
            .updater_builder()
            .endpoints(vec![endpoint.parse().unwrap()])
            .unwrap()
            .build()
            .unwrap();
        async move { updates::check(&updater, "0.1.0").await }
    };

    // Newer and signed: offered, and its download verifies.
    let Found::Newer(update) = check("valid.json").await.unwrap() else {
        panic!("a signed 0.2.0 was not offered")
    };
    assert_eq!(update.version, "0.2.0");
    assert!(updates::summary(&Found::Newer(update.clone())).contains("Kindling 0.2.0 is available"));
    assert_eq!(updates::download(&update).await.unwrap(), new);

    // A signature over other bytes: refused at download, nothing handed on.
    let Found::Newer(tampered) = check("tampered.json").await.unwrap() else {
        panic!("the manifest itself looks like a newer release")
    };
    let refused = updates::download(&tampered).await.unwrap_err();
    assert!(
        refused.0.contains("was refused and nothing was changed"),
        "{refused}"
    );

    // An old release announced as 0.3.0: its signature says 0.0.9.
    let Found::Newer(inflated) = check("inflated.json").await.unwrap() else {
        panic!("announced as newer")
    };
    let refused = updates::download(&inflated).await.unwrap_err();
    assert!(refused.0.contains("refused"), "{refused}");

    // A downgrade is never offered.
    let found = check("downgrade.json").await.unwrap();
    assert!(matches!(&found, Found::Newest { current } if current == "0.1.0"));
    assert_eq!(
        updates::summary(&found),
        "You have the newest Kindling (0.1.0)."
    );
}

#[test]
fn a_build_without_an_update_address_says_so() {
    let app = app("");
    let problem = match updates::updater(app.handle()) {
        Ok(_) => panic!("an updater without endpoints was built"),
        Err(p) => p,
    };
    assert!(
        problem.0.contains("not built to update itself"),
        "{problem}"
    );
}
