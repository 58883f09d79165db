//! One door: a listener, the gate, the routing by model name, and the pass-through of
//! each answer to the caller frame by frame (watched on the way, never held back).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::gate::{self, Policy};
use super::watch::Watch;
use super::{ended_message, Evidence, Front, Route, Served, Slot};

type Body = BoxBody<Bytes, hyper::Error>;

/// A request body larger than this is refused (a long prompt with images is a few MB).
const REQUEST_LIMIT: usize = 64 * 1024 * 1024;

/// Endpoints whose answers are watched and counted.
const ANSWERS: [&str; 8] = [
    "/v1/chat/completions",
    "/chat/completions",
    "/v1/completions",
    "/completions",
    "/completion",
    "/v1/messages",
    "/v1/embeddings",
    "/embeddings",
];

/// Headers that belong to one connection, never passed on.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
];

/// An open door; closing it (dropping it) stops its listener and takes its model off
/// every door.
pub struct Door {
    addr: SocketAddr,
    front: Front,
    slot: Slot,
    route: Arc<Route>,
    /// Ends the accepting: no new connection.
    accepting: CancellationToken,
    /// Ends the connections (each finishes the answer on its way, within a grace).
    cancel: CancellationToken,
}

struct Ctx {
    front: Front,
    slot: Slot,
    policy: Policy,
}

impl Door {
    pub(super) fn open(
        front: Front,
        listener: std::net::TcpListener,
        slot: Slot,
        route: Arc<Route>,
        policy: Policy,
    ) -> std::io::Result<Door> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let accepting = CancellationToken::new();
        let ctx = Arc::new(Ctx {
            front: front.clone(),
            slot,
            policy,
        });
        tokio::spawn(accept(listener, ctx, accepting.clone(), cancel.clone()));
        Ok(Door {
            addr,
            front,
            slot,
            route,
            accepting,
            cancel,
        })
    }

    /// Takes no new connection, and keeps the answers on their way: a server stopping
    /// calls this first, so an answer its end cuts short still reaches the app with the
    /// error event that says so, instead of being dropped by the door's own grace
    /// running out while a hung server ignores its stop signal.
    pub fn stop_accepting(&self) {
        self.accepting.cancel();
    }

    /// Where the door listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The model behind it.
    pub fn route(&self) -> &Route {
        &self.route
    }
}

impl Drop for Door {
    fn drop(&mut self) {
        self.accepting.cancel();
        self.cancel.cancel();
        self.front.close(self.slot, &self.route);
    }
}

/// How long an answer on its way may take to finish once the door closes.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

async fn accept(
    listener: tokio::net::TcpListener,
    ctx: Arc<Ctx>,
    accepting: CancellationToken,
    cancel: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            _ = accepting.cancelled() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %e, "the front door could not accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let ctx = ctx.clone();
                async move { Ok::<_, Infallible>(handle(req, &ctx).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = cancel.cancelled() => {
                    // The door closes (its server stopping): an answer on its way is
                    // finished (ended with an error event when the server went first),
                    // not cut; an idle connection closes at once.
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                }
            }
        });
    }
}

async fn handle(req: Request<Incoming>, ctx: &Ctx) -> Response<Body> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let anthropic = path.starts_with("/v1/messages");
    let admitted = match gate::admit(&parts.method, &path, &parts.headers, &ctx.policy) {
        Ok(a) => a,
        Err(r) => {
            tracing::info!(%path, code = r.code, "the front door refused a request");
            return error(r.status, r.code, &r.message, anthropic);
        }
    };
    let cors = admitted.cors_origin;
    if gate::is_preflight(&parts.method, &parts.headers) {
        return preflight(&parts.headers, cors.as_deref());
    }
    if parts.method == Method::GET && (path == "/v1/models" || path == "/models") {
        return with_cors(models(&ctx.front), cors.as_deref());
    }
    let bytes = match Limited::new(body, REQUEST_LIMIT).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                &format!("The request is larger than Kindling accepts ({} MB). Send a shorter prompt or smaller images.", REQUEST_LIMIT / (1024 * 1024)),
                anthropic,
            )
        }
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "request_incomplete",
                "The request ended before its body did. Send it again.",
                anthropic,
            )
        }
    };
    let named = if parts.method == Method::POST {
        model_named(&bytes)
    } else {
        None
    };
    let Some(route) = ctx.front.route_for(ctx.slot, named.as_deref()) else {
        let there: Vec<String> = ctx.front.routes().iter().map(|r| r.id.clone()).collect();
        return match named {
            Some(name) => error(
                StatusCode::NOT_FOUND,
                "model_not_found",
                &format!(
                    "There is no model named \"{name}\" here. The models here are: {}.",
                    if there.is_empty() {
                        "none".to_string()
                    } else {
                        there.join(", ")
                    }
                ),
                anthropic,
            ),
            None => not_answering(anthropic),
        };
    };
    forward(parts, bytes, route, ctx, started, cors, anthropic).await
}

/// The model a request names, if it names one.
fn model_named(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("model")?
        .as_str()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
}

async fn forward(
    parts: http::request::Parts,
    bytes: Bytes,
    route: Arc<Route>,
    ctx: &Ctx,
    started: Instant,
    cors: Option<String>,
    anthropic: bool,
) -> Response<Body> {
    let Ok(stream) = tokio::net::TcpStream::connect(route.backend).await else {
        return not_answering(anthropic);
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return not_answering(anthropic);
    };
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let mut request = Request::new(Full::new(bytes.clone()));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = path_and_query
        .parse()
        .expect("a path that parsed once parses");
    let headers = request.headers_mut();
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || matches!(
                n,
                "host" | "origin" | "authorization" | "x-api-key" | "referer"
            )
        {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    headers.insert(
        header::HOST,
        HeaderValue::from_str(&route.backend.to_string()).expect("an address is a header"),
    );
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {}", route.key)).expect("the key is ASCII"),
    );
    let answer = match sender.send_request(request).await {
        Ok(a) => a,
        Err(_) => {
            conn.abort();
            return not_answering(anthropic);
        }
    };
    let (mut head, body) = answer.into_parts();
    strip(&mut head.headers);
    let endpoint = parts.uri.path().to_string();
    let watched = parts.method == Method::POST && ANSWERS.contains(&endpoint.as_str());
    let body: Body = if watched {
        let streaming = head
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        Watched {
            inner: Some(body),
            conn: conn.abort_handle(),
            watch: Watch::new(started, streaming),
            closing: None,
            fault: None,
            report: Some(Report {
                front: ctx.front.clone(),
                route,
                request: bytes,
                endpoint,
                end_bad: ctx.policy.end_bad_answers,
                anthropic,
            }),
        }
        .boxed()
    } else {
        body.boxed()
    };
    with_cors(Response::from_parts(head, body), cors.as_deref())
}

/// Drops what belongs to the connection to llama-server, and its CORS headers (the door
/// answers CORS itself).
fn strip(headers: &mut HeaderMap) {
    let names: Vec<_> = headers
        .keys()
        .filter(|n| HOP_BY_HOP.contains(&n.as_str()) || n.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for n in names {
        headers.remove(n);
    }
}

fn with_cors(mut r: Response<Body>, origin: Option<&str>) -> Response<Body> {
    if let Some(o) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    r
}

fn preflight(request: &HeaderMap, origin: Option<&str>) -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        request
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or(HeaderValue::from_static(
                "authorization, content-type, x-api-key",
            )),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    with_cors(r, origin)
}

fn models(front: &Front) -> Response<Body> {
    let data: Vec<Value> = front
        .routes()
        .iter()
        .map(|r| json!({"id": r.id, "object": "model", "created": 0, "owned_by": "kindling"}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

fn not_answering(anthropic: bool) -> Response<Body> {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_not_running",
        "The model server behind Kindling is not answering: it may be starting or stopped. Try again in a moment; if it keeps happening, start it again from Kindling.",
        anthropic,
    )
}

/// An error in the caller's API's own shape: OpenAI's, or Anthropic's on `/v1/messages`.
fn error(status: StatusCode, code: &str, message: &str, anthropic: bool) -> Response<Body> {
    let body = if anthropic {
        json!({"type": "error", "error": {"type": code, "message": message}})
    } else {
        let kind = if status.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        };
        json!({"error": {"message": message, "type": kind, "code": code}})
    };
    json_response(status, &body)
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed()
}

fn empty() -> Body {
    full(Bytes::new())
}

/// The event that ends a streamed answer with an error, in the caller's API's shape:
/// the answer so far is not to be taken as whole.
fn error_event(anthropic: bool, code: &str, message: &str) -> Bytes {
    Bytes::from(if anthropic {
        format!(
            "event: error\ndata: {}\n\n",
            json!({"type": "error", "error": {"type": code, "message": message}})
        )
    } else {
        format!(
            "data: {}\n\ndata: [DONE]\n\n",
            json!({"error": {"message": message, "type": "server_error", "code": code}})
        )
    })
}

/// Said when the model server stops in the middle of a streamed answer.
pub const STOPPED_MID_ANSWER: &str = "The model server stopped in the middle of this answer, so it is incomplete. Kindling says why in its window; ask again once it is serving.";

/// What a watched answer reports when it ends.
struct Report {
    front: Front,
    route: Arc<Route>,
    request: Bytes,
    endpoint: String,
    end_bad: bool,
    anthropic: bool,
}

/// An answer on its way to the caller, watched frame by frame.
struct Watched {
    inner: Option<Incoming>,
    /// The connection to llama-server: closed when the answer is ended, so the server
    /// stops generating it.
    conn: tokio::task::AbortHandle,
    watch: Watch,
    /// The error event that ends a bad answer, still to send.
    closing: Option<Bytes>,
    fault: Option<Evidence>,
    /// Taken when the answer has been reported.
    report: Option<Report>,
}

impl Watched {
    fn went_wrong(&mut self, d: &crate::bench::degenerate::Degeneracy) {
        let Some(r) = &self.report else { return };
        let request = serde_json::from_slice(&r.request)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.request).into_owned()));
        self.fault = Some(Evidence {
            id: 0,
            at: chrono::Local::now().to_rfc3339(),
            kindling_version: env!("CARGO_PKG_VERSION").into(),
            model: r.route.id.clone(),
            model_file: r.route.model_path.clone(),
            runtime_build: r.route.build.clone(),
            server_args: r.route.args.clone(),
            endpoint: r.endpoint.clone(),
            request,
            request_bytes: r.request.len() as u64,
            kind: d.kind.clone(),
            detail: d.evidence.clone(),
            at_piece: d.at_piece,
            ended: r.end_bad,
            stream_tail: self.watch.tail(),
        });
        if r.end_bad {
            self.closing = Some(error_event(
                r.anthropic,
                "degenerate_output",
                &ended_message(d),
            ));
            self.inner = None;
            self.conn.abort();
        }
    }

    fn report(&mut self) {
        let Some(r) = self.report.take() else { return };
        self.watch.finish();
        r.front.served(Served {
            model: r.route.id.clone(),
            seen: self.watch.seen.clone(),
            fault: self.fault.take(),
        });
    }
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(last) = this.closing.take() {
            return Poll::Ready(Some(Ok(Frame::data(last))));
        }
        let Some(inner) = this.inner.as_mut() else {
            this.report();
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref().and_then(|data| this.watch.feed(data)) {
                    this.went_wrong(&d);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            // The server went away mid-stream (a crash, a stop, a helper Mac lost under
            // a split model), whether its connection broke or it closed the stream
            // cleanly: end with an error the app reads, never a silent cut that passes
            // for a whole answer.
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) if !this.watch.ended_whole() => {
                let anthropic = this.report.as_ref().is_some_and(|r| r.anthropic);
                this.inner = None;
                Poll::Ready(Some(Ok(Frame::data(error_event(
                    anthropic,
                    "server_stopped",
                    STOPPED_MID_ANSWER,
                )))))
            }
            Poll::Ready(None) => {
                this.report();
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // The caller went away mid-answer: stop the server's work on it too.
        if self.inner.is_some() {
            self.conn.abort();
        }
        self.report();
    }
}
