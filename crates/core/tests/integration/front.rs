//! The front door with the real llama-server and the sample model: who may call, one
//! address for both models, Anthropic's API, and what is counted. The one stand-in plays
//! the fault the real server cannot be made to show: a stream of `<unused50>` forever.

use std::time::Duration;

use futures_util::StreamExt;
use kindling_core::front::{Policy, Route, Slot};
use kindling_core::server::Server;
use kindling_core::{Cancel, Event};
use kindling_testsupport::{ChatFault, ChatStandIn};
use serde_json::{json, Value};

use super::{core_in, door, sample_model, SERVER_LOCK};

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn chat(max_tokens: u32) -> Value {
    json!({"messages": [{"role": "user", "content": "Say hi"}], "max_tokens": max_tokens})
}

/// The newest task any slot of the server worked on: it moves only when the model
/// did work.
async fn last_task(server: &Server) -> i64 {
    let slots: Value = http()
        .get(format!("{}/slots", door(server)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    slots
        .as_array()
        .expect("slots is a list")
        .iter()
        .filter_map(|s| s["id_task"].as_i64())
        .max()
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebinding_and_foreign_pages_are_refused_before_the_model_does_any_work() {
    let _guard = SERVER_LOCK.lock().await;
    let home = tempfile::tempdir().unwrap();
    let core = core_in(home.path()).await;
    let (server, _) = core
        .start_serving(&sample_model(), None, &Cancel::new())
        .await
        .unwrap();
    let url = format!("{}/v1/chat/completions", door(&server));
    let port = server.port();
    let before = last_task(&server).await;

    // A page that rebound its own name to 127.0.0.1 sends that name as Host.
    let rebound = http()
        .post(&url)
        .header("Host", format!("rebind.example:{port}"))
        .json(&chat(8))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    let why: Value = rebound.json().await.unwrap();
    assert!(
        why["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rebind.example"),
        "{why}"
    );
    let models = http()
        .get(format!("{}/v1/models", door(&server)))
        .header("Host", format!("rebind.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 403, "nor is the model's name told");
    // A cross-site "simple" POST: the page could not read the answer, but the model
    // would have done the work.
    let simple = http()
        .post(&url)
        .header("Origin", "https://evil.example")
        .header("Content-Type", "text/plain")
        .body(chat(8).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(simple.status(), 403);
    assert_eq!(
        last_task(&server).await,
        before,
        "the server worked for a refused request"
    );

    // A page on this computer (a same-origin one, or a dev server on another port) works.
    let own = http()
        .post(&url)
        .header("Origin", format!("http://localhost:{port}"))
        .json(&chat(4))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert_ne!(last_task(&server).await, before, "this one was answered");
    // /v1/models names the model, never its path on disk.
    let listed: Value = http()
        .get(format!("{}/v1/models", door(&server)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"][0]["id"], "gemma-3-270m-q4_k_m", "{listed}");
    assert!(!listed.to_string().contains('/'), "{listed}");

    server.stop().await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the door closes with its server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_models_answer_at_one_address_by_name_and_their_use_is_counted() {
    let _guard = SERVER_LOCK.lock().await;
    let home = tempfile::tempdir().unwrap();
    let core = core_in(home.path()).await;
    // A second model file of its own name (a link to the sample: the same weights).
    let other = home.path().join("second-model.gguf");
    std::fs::hard_link(sample_model(), &other)
        .or_else(|_| std::fs::copy(sample_model(), &other).map(|_| ()))
        .unwrap();
    let (first, _) = core
        .start_serving(&sample_model(), None, &Cancel::new())
        .await
        .unwrap();
    let (second, _) = core
        .start_second(&other, None, Some(first.config()), &Cancel::new())
        .await
        .unwrap();

    let listed: Value = http()
        .get(format!("{}/v1/models", door(&first)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gemma-3-270m-q4_k_m", "second-model"], "{listed}");

    let ask = |base: String, model: Option<&str>| {
        let mut body = chat(4);
        if let Some(m) = model {
            body["model"] = json!(m);
        }
        async move {
            let r = http()
                .post(format!("{base}/v1/chat/completions"))
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // By name through the menu-bar port: each request reaches the model it names (the
    // server answers with its own name).
    let (s, a) = ask(door(&first), Some("second-model")).await;
    assert_eq!((s, a["model"].as_str()), (200, Some("second-model")), "{a}");
    let (s, a) = ask(door(&first), Some("GEMMA-3-270M-Q4_K_M")).await;
    assert_eq!(
        (s, a["model"].as_str()),
        (200, Some("gemma-3-270m-q4_k_m")),
        "{a}"
    );
    // No name: the door's own model; the second's own port stays for those who use it.
    let (_, a) = ask(door(&first), None).await;
    assert_eq!(a["model"], "gemma-3-270m-q4_k_m", "{a}");
    let (_, a) = ask(door(&second), None).await;
    assert_eq!(a["model"], "second-model", "{a}");
    // An unknown name: OpenAI's shape, naming the models there are.
    let (s, a) = ask(door(&first), Some("gpt-4o")).await;
    assert_eq!(s, 404, "{a}");
    let msg = a["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("gpt-4o") && msg.contains("second-model") && msg.contains("gemma-3-270m"),
        "{msg}"
    );
    assert_eq!(a["error"]["code"], "model_not_found");

    // A streamed answer through the door is counted with its tokens and first piece.
    let streamed = http()
        .post(format!("{}/v1/chat/completions", door(&first)))
        .json(
            &json!({"messages": [{"role": "user", "content": "Count to five"}],
                      "max_tokens": 12, "stream": true}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(streamed.contains("data: [DONE]"), "{streamed}");

    // Counting happens off the answers' path: give it a moment.
    let mut days = Vec::new();
    for _ in 0..50 {
        days = core.db().served_days(1).await.unwrap();
        if days.iter().map(|d| d.requests).sum::<i64>() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let of = |m: &str| days.iter().find(|d| d.model == m).cloned();
    let main = of("gemma-3-270m-q4_k_m").expect("the menu-bar model was counted");
    let beside = of("second-model").expect("the second model was counted");
    assert_eq!(
        (main.requests, beside.requests),
        (3, 2),
        "the 404 is not a request a model served: {days:?}"
    );
    assert!(
        main.completion_tokens >= 3 && main.prompt_tokens > 0,
        "{main:?}"
    );
    assert!(
        main.mean_first_piece_ms.is_some_and(|ms| ms > 0.0),
        "{main:?}"
    );
    assert_eq!(main.went_wrong, 0);

    second.stop().await;
    let (s, a) = ask(door(&first), Some("second-model")).await;
    assert_eq!(s, 404, "a stopped model is no longer routed to: {a}");
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_messages_with_a_tool_pass_through_the_door() {
    let _guard = SERVER_LOCK.lock().await;
    let home = tempfile::tempdir().unwrap();
    let core = core_in(home.path()).await;
    let (server, _) = core
        .start_serving(&sample_model(), None, &Cancel::new())
        .await
        .unwrap();
    let r = http()
        .post(format!("{}/v1/messages", door(&server)))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({
            "model": "gemma-3-270m-q4_k_m",
            "max_tokens": 24,
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            "tools": [{"name": "get_weather", "description": "The weather in a city",
                       "input_schema": {"type": "object",
                                        "properties": {"city": {"type": "string"}},
                                        "required": ["city"]}}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["type"], "message", "{a}");
    let kinds: Vec<&str> = a["content"]
        .as_array()
        .expect("content blocks")
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert!(
        !kinds.is_empty() && kinds.iter().all(|k| ["text", "tool_use"].contains(k)),
        "{a}"
    );
    // An unknown model gets Anthropic's error shape on Anthropic's endpoint.
    let r = http()
        .post(format!("{}/v1/messages", door(&server)))
        .json(&json!({"model": "claude-x", "max_tokens": 4,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["error"]["type"], "model_not_found", "{e}");
    server.stop().await;
}

/// A door in front of the stand-in that streams `<unused50>` forever.
async fn door_to_garbage(
    core: &kindling_core::Core,
    end: bool,
) -> (ChatStandIn, kindling_core::front::Door) {
    let standin = ChatStandIn::start(ChatFault::StreamsUnusedForever).await;
    let backend = standin
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let route = Route::new(
        std::path::Path::new("/models/broken-moe.gguf"),
        None,
        backend,
        "unused".into(),
        vec!["--model".into(), "/models/broken-moe.gguf".into()],
        "b11434 (test)".into(),
    );
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let policy = Policy {
        end_bad_answers: end,
        ..Policy::default()
    };
    let door = core
        .front()
        .open(listener, Slot::Served, route, policy)
        .unwrap();
    (standin, door)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_garbage_is_ended_counted_and_its_evidence_saved() {
    let home = tempfile::tempdir().unwrap();
    let core = core_in(home.path()).await;
    let mut events = core.events().subscribe();
    let (standin, door) = door_to_garbage(&core, true).await;
    let request = json!({"messages": [{"role": "user", "content": "Tell me a story"}],
                         "max_tokens": 100000, "stream": true});
    let answer = tokio::time::timeout(
        Duration::from_secs(20),
        http()
            .post(format!("http://{}/v1/chat/completions", door.addr()))
            .json(&request)
            .send()
            .await
            .unwrap()
            .text(),
    )
    .await
    .expect("the answer was ended, not left to run")
    .unwrap();
    assert!(answer.contains("<unused50>"), "it passed through first");
    let tail: Vec<&str> = answer
        .trim_end()
        .lines()
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(tail.last(), Some(&"data: [DONE]"));
    let error: Value =
        serde_json::from_str(tail[tail.len() - 2].strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(error["error"]["code"], "degenerate_output", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Kindling ended this answer"),
        "{error}"
    );
    // The stand-in stops too: its connection was closed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = standin.pieces_sent();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(standin.pieces_sent(), sent, "the server went on streaming");
    assert!(sent < 1000, "{sent} pieces before the end");

    // Counted, announced, and its evidence is the owner's to save.
    let id = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Event::AnswerWentWrong {
                id, today, kind, ..
            }) = events.recv().await
            {
                assert_eq!((today, kind.as_str()), (1, "special_tokens"));
                return id;
            }
        }
    })
    .await
    .expect("the bad answer was announced");
    let day = kindling_core::front::today();
    let faults = core.db().served_faults(&day).await.unwrap();
    assert_eq!(faults.len(), 1);
    assert!(faults[0].ended);
    assert_eq!(faults[0].model, "broken-moe");
    let saved = home.path().join("bad answer.json");
    core.front().save_evidence(id, &saved).unwrap();
    let e: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(e["request"], request, "the request as the app sent it");
    assert!(e["stream_tail"].as_str().unwrap().contains("<unused50>"));
    assert_eq!(e["server_args"][1], "/models/broken-moe.gguf");
    assert_eq!(e["runtime_build"], "b11434 (test)");
    assert_eq!(e["kind"], "special_tokens");
    let gone = core.front().save_evidence(id + 1, &saved).unwrap_err();
    assert_eq!(gone.code(), kindling_core::ErrorCode::NotKept, "{gone}");
    drop(door);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_setting_off_a_bad_answer_runs_on_and_is_still_counted() {
    let home = tempfile::tempdir().unwrap();
    let core = core_in(home.path()).await;
    let (standin, door) = door_to_garbage(&core, false).await;
    let mut stream = http()
        .post(format!("http://{}/v1/chat/completions", door.addr()))
        .json(&json!({"messages": [{"role": "user", "content": "hi"}], "stream": true}))
        .send()
        .await
        .unwrap()
        .bytes_stream();
    let mut text = String::new();
    while text.matches("<unused50>").count() < 100 {
        let chunk = stream.next().await.expect("the stream runs on").unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!text.contains("degenerate_output"), "ended anyway");
    drop(stream);
    let sent = standin.pieces_sent();
    assert!(sent >= 100, "{sent}");
    let day = kindling_core::front::today();
    let mut faults = Vec::new();
    for _ in 0..50 {
        faults = core.db().served_faults(&day).await.unwrap();
        if !faults.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(faults.len(), 1, "counted when the caller hung up");
    assert!(!faults[0].ended);
    drop(door);
}
