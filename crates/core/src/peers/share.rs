//! The helper's side: lending this Mac's memory to the Macs it paired with.
//!
//! One listener (the only thing Kindling opens to the network for this) takes two kinds
//! of connection: a pairing, while a code is shown, and a tunnel from a paired Mac. A
//! tunnel asks what this Mac offers, or to reach its `ggml-rpc-server`, which listens on
//! 127.0.0.1 only and is started on the first such request, or (when the owner lends
//! it) to reach this Mac's own model server, for a model it already serves. The RPC server's tensor
//! cache lives in the home and is pruned to a size limit (llama.cpp's own has none).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::nearby::Advert;
use super::on_ask::{self, OnAsk};
use super::pairing::{self, Me};
use super::wire::{self, MAGIC, OPEN_PAIR, OPEN_TUNNEL};
use super::{Answer, Book, Hello, Identity, Offer, Peer, PeerError, Want};
use crate::hardware::power::{self, LendWhen};
use crate::runtime::Runtime;

/// The RPC server's file name beside llama-server.
pub const RPC_SERVER: &str = "ggml-rpc-server";

/// What the owner allows, and how the link is watched.
#[derive(Debug, Clone)]
pub struct ShareOptions {
    /// Where to listen: every interface for the house's network (the default), or one
    /// address (tests use 127.0.0.2 and 127.0.0.3).
    pub host: IpAddr,
    pub port: u16,
    /// The most memory a share of a model may take here.
    pub memory_bytes: u64,
    /// Lend the GPU too (otherwise the processor does the work).
    pub use_gpu: bool,
    /// The most disk the RPC server's tensor cache may keep.
    pub cache_limit_bytes: u64,
    pub heartbeat: Duration,
    pub dead_after: Duration,
    /// The port of this Mac's own model server (its front door, on loopback), when the
    /// owner lends it: paired Macs may then route requests for the models it serves.
    pub serve_port: Option<u16>,
    /// Lend only while plugged in, or only while the lid is open, as the owner allowed.
    pub lend_when: LendWhen,
    /// What starts a model this Mac has for a paired Mac that asks (with `serve_port`,
    /// and only while that server serves nothing); `None`: it never starts one.
    pub on_ask: Option<OnAsk>,
    /// How long a model started for a paired Mac serves once none uses it
    /// ([`on_ask::STOP_UNUSED_AFTER`]).
    pub stop_unused_after: Duration,
    /// The key the lent model server's door asks of other devices now (network access
    /// on), told to a paired Mac that routes there.
    pub door_key: Option<DoorKey>,
}

/// Reads the key this Mac's front door asks of other devices, when it asks one.
#[derive(Clone)]
pub struct DoorKey(pub Arc<dyn Fn() -> Option<String> + Send + Sync>);

impl std::fmt::Debug for DoorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DoorKey")
    }
}

/// How often a lending Mac looks again at its power source and lid while it lends.
pub const POWER_CHECK: Duration = Duration::from_secs(5);

/// How often a quiet link says it is still there, and how long silence means it is gone.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
pub const DEAD_AFTER: Duration = Duration::from_secs(10);

/// This Mac, as a helper says it to the Macs that reach it.
#[derive(Debug, Clone)]
pub struct Lender {
    pub name: String,
    pub build: Option<u32>,
    pub offer: Offer,
    /// llama-server of this Mac's runtime: `ggml-rpc-server` is beside it.
    pub runtime: Runtime,
}

/// The helper, listening.
pub struct Helper {
    addr: SocketAddr,
    code: Arc<Mutex<Option<String>>>,
    paired: tokio::sync::Mutex<mpsc::Receiver<Result<Peer, PeerError>>>,
    stop: CancellationToken,
    rpc: Arc<tokio::sync::Mutex<Option<RpcServer>>>,
    advert: Option<Arc<Advert>>,
    users: watch::Receiver<Users>,
    started: Arc<tokio::sync::Mutex<Option<PathBuf>>>,
    on_ask: Option<OnAsk>,
}

/// The paired Macs using this one now, by name: what each uses, and how many links.
pub type Users = BTreeMap<String, Use>;

/// What a paired Mac uses here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Use {
    /// Links to the RPC server: it holds a share of a model here.
    pub memory: usize,
    /// Requests sent to this Mac's own model server.
    pub model_server: usize,
}

impl Use {
    fn count(&mut self, want: Want) -> &mut usize {
        if want == Want::Rpc {
            &mut self.memory
        } else {
            &mut self.model_server
        }
    }
}

/// "Studio iMac is using this Mac's memory", for the tray and `kindling share`.
pub fn using_line(name: &str, using: &Use) -> String {
    let what = match (using.memory > 0, using.model_server > 0) {
        (true, true) => "this Mac's memory and its model server",
        (true, false) => "this Mac's memory (a share of a model)",
        _ => "this Mac's model server",
    };
    format!("{name} is using {what}")
}

/// What changed between two moments, in sentences: who started, and who stopped, using
/// this Mac.
pub fn using_changes(before: &Users, after: &Users) -> Vec<String> {
    // What is used, not how many links: one more request is no news.
    let kind = |u: &Use| (u.memory > 0, u.model_server > 0);
    let mut said: Vec<String> = after
        .iter()
        .filter(|(name, using)| before.get(*name).map(kind) != Some(kind(using)))
        .map(|(name, using)| using_line(name, using))
        .collect();
    said.extend(
        before
            .keys()
            .filter(|name| !after.contains_key(*name))
            .map(|name| format!("{name} stopped using this Mac")),
    );
    said
}

/// How long a Mac still counts as using this one after its last link closed: routed
/// requests come one after another, each on its own link.
pub const USE_LINGERS: Duration = Duration::from_secs(10);

struct Ctx {
    identity: Identity,
    book: Book,
    lender: Lender,
    opts: ShareOptions,
    cache: PathBuf,
    servers: PathBuf,
    code: Arc<Mutex<Option<String>>>,
    paired: mpsc::Sender<Result<Peer, PeerError>>,
    rpc: Arc<tokio::sync::Mutex<Option<RpcServer>>>,
    advert: Option<Arc<Advert>>,
    users: watch::Sender<Users>,
    /// Cancelled when the owner stops lending.
    stop: CancellationToken,
    /// The model started for a paired Mac, while it serves; one start at a time.
    started: Arc<tokio::sync::Mutex<Option<PathBuf>>>,
}

/// How long a link has, once lending stops, to tell the Mac at its other end why.
const SAY_WHY: Duration = Duration::from_millis(500);

/// A running `ggml-rpc-server`.
struct RpcServer {
    child: tokio::process::Child,
    port: u16,
}

impl Helper {
    /// Starts listening as `lender` for the Macs in `book`.
    pub async fn open(
        identity: Identity,
        book: Book,
        lender: Lender,
        opts: ShareOptions,
        paths: &crate::Paths,
    ) -> Result<Helper, PeerError> {
        // A runtime without the RPC server is said now, not at the first request.
        rpc_server_beside(&lender.runtime.path)?;
        let listener = TcpListener::bind((opts.host, opts.port))
            .await
            .map_err(|source| PeerError::System {
                what: "open the port other Macs reach this one on (is Kindling sharing already?)",
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| PeerError::System {
            what: "read the sharing port",
            source,
        })?;
        let (tx, rx) = mpsc::channel(4);
        let code = Arc::new(Mutex::new(None));
        let rpc = Arc::new(tokio::sync::Mutex::new(None));
        let stop = CancellationToken::new();
        let cache = paths.rpc_cache();
        prune_cache(&cache.join("rpc"), opts.cache_limit_bytes);
        // Announced on the house's network (Bonjour), unless it listens on loopback only,
        // where no other Mac could reach it anyway.
        let advert = (!addr.ip().is_loopback())
            .then(|| Advert::start(&lender.name, &identity.public(), lender.build, addr))
            .flatten()
            .map(Arc::new);
        let (users_tx, users) = watch::channel(Users::new());
        let started = Arc::new(tokio::sync::Mutex::new(None));
        let on_ask = opts.on_ask.clone();
        let ctx = Arc::new(Ctx {
            identity,
            book,
            lender,
            opts,
            cache,
            servers: paths.servers(),
            code: code.clone(),
            paired: tx,
            rpc: rpc.clone(),
            advert: advert.clone(),
            users: users_tx,
            stop: stop.clone(),
            started: started.clone(),
        });
        let stopped = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stopped.cancelled() => break,
                    a = listener.accept() => a,
                };
                let Ok((stream, _)) = accepted else { continue };
                let ctx = ctx.clone();
                let stopped = stopped.clone();
                tokio::spawn(async move {
                    // A link in use says why it ends (see `until_not_lending`); the
                    // rest end with lending.
                    let ended = async {
                        stopped.cancelled().await;
                        tokio::time::sleep(SAY_WHY).await;
                    };
                    tokio::select! {
                        _ = ended => {}
                        _ = handle(stream, ctx) => {}
                    }
                });
            }
        });
        Ok(Helper {
            addr,
            code,
            paired: tokio::sync::Mutex::new(rx),
            stop,
            rpc,
            advert,
            users,
            started,
            on_ask,
        })
    }

    /// The paired Macs using this one now (changes as they come and go).
    pub fn users(&self) -> watch::Receiver<Users> {
        self.users.clone()
    }

    /// Whether this Mac is announced on the local network (Bonjour).
    pub fn announced(&self) -> bool {
        self.advert.is_some()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How the other Mac's owner types this one's address: its address on the local
    /// network (with the port, when it is not the usual one).
    pub fn reach_hint(&self) -> String {
        let ip = if self.addr.ip().is_unspecified() {
            local_ip().unwrap_or_else(|| "THIS-MAC-ADDRESS".into())
        } else {
            self.addr.ip().to_string()
        };
        if self.addr.port() == super::DEFAULT_SHARE_PORT {
            ip
        } else {
            format!("{ip}:{}", self.addr.port())
        }
    }

    /// Shows a new pairing code: good for one try, for [`pairing::CODE_LIFETIME`].
    pub fn show_code(&self) -> String {
        let code = pairing::new_code();
        *self.code.lock().expect("the code lock is never poisoned") = Some(code.clone());
        if let Some(advert) = &self.advert {
            advert.set_pairing(true);
        }
        let shown = self.code.clone();
        let expected = code.clone();
        let advert = self.advert.clone();
        tokio::spawn(async move {
            tokio::time::sleep(pairing::CODE_LIFETIME).await;
            let mut current = shown.lock().expect("the code lock is never poisoned");
            if current.as_deref() == Some(expected.as_str()) {
                *current = None;
                if let Some(advert) = advert {
                    advert.set_pairing(false);
                }
            }
        });
        code
    }

    /// The outcome of the next pairing attempt with the code shown.
    pub async fn next_pairing(&self) -> Result<Peer, PeerError> {
        self.paired.lock().await.recv().await.unwrap_or_else(|| {
            Err(PeerError::Pairing {
                why: "sharing stopped".into(),
            })
        })
    }

    /// Stops listening and stops the RPC server.
    pub async fn stop(&self) {
        self.stop.cancel();
        if let Some(advert) = &self.advert {
            advert.withdraw();
        }
        // The links in use tell their Macs first: "its owner stopped lending it", not a
        // link that broke.
        tokio::time::sleep(SAY_WHY / 2).await;
        if let Some(mut rpc) = self.rpc.lock().await.take() {
            let _ = rpc.child.kill().await;
        }
        // A model started for a paired Mac is not the owner's: it stops with lending.
        if let (Some(model), Some(on_ask)) = (self.started.lock().await.take(), &self.on_ask) {
            on_ask.0.stop(&model, "this Mac stopped lending").await;
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// This machine's address on the local network: the one a route towards a private
/// address would leave from (a UDP socket's `connect` sends no packet).
fn local_ip() -> Option<String> {
    let s = std::net::UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    s.connect(("192.168.0.1", 9)).ok()?;
    Some(s.local_addr().ok()?.ip().to_string())
}

/// `ggml-rpc-server` of the runtime whose llama-server is at `server`.
pub fn rpc_server_beside(server: &Path) -> Result<PathBuf, PeerError> {
    let real = std::fs::canonicalize(server).unwrap_or_else(|_| server.to_path_buf());
    let candidates = [
        real.with_file_name(RPC_SERVER),
        server.with_file_name(RPC_SERVER),
    ];
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| PeerError::NoRpcServer {
            server: server.to_path_buf(),
        })
}

async fn handle(mut stream: TcpStream, ctx: Arc<Ctx>) {
    let mut opening = [0u8; 5];
    let read = tokio::time::timeout(wire::HANDSHAKE_TIMEOUT, stream.read_exact(&mut opening)).await;
    if !matches!(read, Ok(Ok(_))) || &opening[..4] != MAGIC {
        return;
    }
    match opening[4] {
        OPEN_PAIR => pair(stream, &ctx).await,
        OPEN_TUNNEL => tunnel(stream, ctx).await,
        _ => {}
    }
}

async fn pair(stream: TcpStream, ctx: &Ctx) {
    // One try per code: the first connection takes it.
    let Some(code) = ctx
        .code
        .lock()
        .expect("the code lock is never poisoned")
        .take()
    else {
        return;
    };
    if let Some(advert) = &ctx.advert {
        advert.set_pairing(false);
    }
    let me = Me {
        identity: &ctx.identity,
        name: ctx.lender.name.clone(),
        build: ctx.lender.build,
        share_port: ctx.opts.port,
    };
    let outcome = match pairing::answer(stream, &code, &me).await {
        Ok(peer) => ctx
            .book
            .add(peer.clone())
            .map(|()| peer)
            .map_err(PeerError::from),
        Err(e) => Err(e),
    };
    let _ = ctx.paired.send(outcome).await;
}

async fn tunnel(stream: TcpStream, arc: Arc<Ctx>) {
    let ctx = &*arc;
    let accepted = wire::accept(stream, &ctx.identity, |key| ctx.book.knows(key)).await;
    let Ok(Some(mut ch)) = accepted else {
        return;
    };
    let Ok(Ok(hello)) = tokio::time::timeout(wire::HANDSHAKE_TIMEOUT, ch.rx.json::<Hello>()).await
    else {
        return;
    };
    let mut answer = Answer {
        name: ctx.lender.name.clone(),
        build: ctx.lender.build,
        offer: Some(ctx.lender.offer.clone()),
        refused: None,
        door_key: None,
    };
    if let Some(sentence) = super::build_mismatch(ctx.lender.build, &hello.name, hello.build) {
        return refuse(&mut ch, answer, sentence).await;
    }
    if let Some(why) = not_lending_now(ctx.opts.lend_when).await {
        return refuse(&mut ch, answer, why).await;
    }
    if let (Some(offer), Some(port)) = (answer.offer.as_mut(), ctx.opts.serve_port) {
        answer.door_key = ctx.opts.door_key.as_ref().and_then(|k| (k.0)());
        offer.serves = served_models(port, answer.door_key.as_deref()).await;
        if let (true, Some(on_ask)) = (offer.serves.is_empty(), &ctx.opts.on_ask) {
            offer.can_serve = on_ask
                .0
                .can_serve()
                .await
                .into_iter()
                .map(|c| c.id)
                .collect();
        }
    }
    // Named as paired here, whatever name it gives now.
    let who = ctx
        .book
        .list()
        .ok()
        .and_then(|l| l.into_iter().find(|p| p.public_key() == Some(ch.remote)))
        .map_or(hello.name.clone(), |p| p.name);
    match hello.want {
        Want::Offer | Want::Pair => {
            let _ = ch.tx.json(&answer).await;
        }
        Want::Serve => {
            let asked = hello.model.clone().unwrap_or_default();
            let model = match may_start(ctx, &asked, answer.offer.as_ref()).await {
                Ok(model) => model,
                Err(why) => return refuse(&mut ch, answer, why).await,
            };
            if ch.tx.json(&answer).await.is_err() {
                return;
            }
            let started = match model {
                Some(path) => start_for(&arc, &path, &who).await,
                None => Ok(()),
            };
            answer.refused = started.err();
            let _ = ch.tx.json(&answer).await;
        }
        Want::Route | Want::Rpc => {
            let local = if hello.want == Want::Route {
                reach_door(ctx).await
            } else {
                reach_rpc_server(ctx).await
            };
            let local = match local {
                Ok(s) => s,
                Err(why) => return refuse(&mut ch, answer, why).await,
            };
            if ch.tx.json(&answer).await.is_err() {
                return;
            }
            let _using = Using::start(ctx, &who, hello.want);
            // Lending stops when the owner's conditions end (the cable pulled, the lid
            // closed): the other Mac is told why, never left with a link gone silent.
            let until = async {
                tokio::select! {
                    why = until_not_lending(ctx.opts.lend_when) => why,
                    _ = ctx.stop.cancelled() => "its owner stopped lending it".to_string(),
                }
            };
            let _ =
                wire::pipe_until(local, ch, ctx.opts.heartbeat, ctx.opts.dead_after, until).await;
            if hello.want == Want::Rpc {
                prune_cache(&ctx.cache.join("rpc"), ctx.opts.cache_limit_bytes);
            }
        }
    }
}

/// Says no to the Mac at the other end of `ch`, and `why`.
async fn refuse(ch: &mut wire::Channel, mut answer: Answer, why: String) {
    answer.refused = Some(why);
    let _ = ch.tx.json(&answer).await;
}

/// Whether this Mac may start `asked` for a paired Mac: the model to start (`None`: it
/// serves it already), or why not, in words for that Mac's owner. `offer` is what was
/// just said to it (its `serves` and `can_serve`).
async fn may_start(
    ctx: &Ctx,
    asked: &str,
    offer: Option<&Offer>,
) -> Result<Option<PathBuf>, String> {
    let (Some(_), Some(on_ask), Some(offer)) = (ctx.opts.serve_port, &ctx.opts.on_ask, offer)
    else {
        return Err(
            "it does not start models for other Macs (it does not lend its model server)".into(),
        );
    };
    if let Some(why) = on_ask::busy_with(&offer.serves, asked) {
        return Err(why);
    }
    if !offer.serves.is_empty() {
        return Ok(None);
    }
    let can = on_ask.0.can_serve().await;
    on_ask::find(&can, asked)
        .map(|c| Some(c.path.clone()))
        .ok_or_else(|| {
            format!(
                "it does not have {asked} on its disk, or {asked} does not fit where it runs fast"
            )
        })
}

/// Starts `model` for `who`, one start at a time, and stops it once no paired Mac has
/// used this Mac's model server for the owner's while (or lending stops).
async fn start_for(arc: &Arc<Ctx>, model: &Path, who: &str) -> Result<(), String> {
    let Some(on_ask) = arc.opts.on_ask.clone() else {
        return Err("it does not start models for other Macs".into());
    };
    let mut started = arc.started.lock().await;
    if started.as_deref() == Some(model) {
        return Ok(());
    }
    if let Some(other) = started.as_deref() {
        return Err(format!(
            "it is starting {} for another Mac",
            crate::front::model_id(other)
        ));
    }
    on_ask.0.start(model, who).await?;
    *started = Some(model.to_path_buf());
    drop(started);
    let (ctx, model) = (arc.clone(), model.to_path_buf());
    tokio::spawn(async move {
        let after = ctx.opts.stop_unused_after;
        let mut users = ctx.users.subscribe();
        loop {
            let unused = users
                .borrow_and_update()
                .values()
                .all(|u| u.model_server == 0);
            tokio::select! {
                _ = ctx.stop.cancelled() => return,
                _ = users.changed() => continue,
                _ = tokio::time::sleep(after), if unused => break,
            }
        }
        let mut started = ctx.started.lock().await;
        if started.as_deref() == Some(model.as_path()) {
            *started = None;
            on_ask.0.stop(&model, &on_ask::unused_for(after)).await;
        }
    });
    Ok(())
}

/// One link of a paired Mac counted while it lasts (and [`USE_LINGERS`] after).
struct Using {
    users: watch::Sender<Users>,
    name: String,
    want: Want,
}

impl Using {
    fn start(ctx: &Ctx, name: &str, want: Want) -> Using {
        ctx.users
            .send_modify(|u| *u.entry(name.to_string()).or_default().count(want) += 1);
        Using {
            users: ctx.users.clone(),
            name: name.to_string(),
            want,
        }
    }
}

impl Drop for Using {
    fn drop(&mut self) {
        let (users, name, want) = (self.users.clone(), self.name.clone(), self.want);
        let end = move || {
            users.send_modify(|u| {
                if let Some(using) = u.get_mut(&name) {
                    let n = using.count(want);
                    *n = n.saturating_sub(1);
                    if *using == Use::default() {
                        u.remove(&name);
                    }
                }
            })
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    tokio::time::sleep(USE_LINGERS).await;
                    end();
                });
            }
            Err(_) => end(),
        }
    }
}

/// Why this Mac does not lend now, under the owner's conditions.
async fn not_lending_now(when: LendWhen) -> Option<String> {
    if !when.watches() {
        return None;
    }
    let now = tokio::task::spawn_blocking(power::read)
        .await
        .unwrap_or_default();
    when.why_not(&now)
}

/// Resolves with the reason once the owner's conditions for lending end.
async fn until_not_lending(when: LendWhen) -> String {
    if !when.watches() {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(POWER_CHECK).await;
        if let Some(why) = not_lending_now(when).await {
            return why;
        }
    }
}

/// A connection to this Mac's own model server (its front door), when the owner lends it.
async fn reach_door(ctx: &Ctx) -> Result<TcpStream, String> {
    let port = ctx
        .opts
        .serve_port
        .ok_or_else(|| "it does not lend its model server".to_string())?;
    TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|_| "its model server is not running".to_string())
}

/// The models this Mac's front door on `port` answers for now, asked with its `key`
/// when it asks one (none when it is not running, or does not answer within two
/// seconds).
async fn served_models(port: u16, key: Option<&str>) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Listed {
        data: Vec<Model>,
    }
    #[derive(serde::Deserialize)]
    struct Model {
        id: String,
    }
    let mut ask = crate::server::http_client()
        .get(format!("http://127.0.0.1:{port}/v1/models"))
        .timeout(Duration::from_secs(2));
    if let Some(key) = key {
        ask = ask.bearer_auth(key);
    }
    let asked = ask.send().await;
    match asked {
        Ok(r) if r.status().is_success() => r
            .json::<Listed>()
            .await
            .map(|l| l.data.into_iter().map(|m| m.id).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A connection to this Mac's RPC server, started (or started again) when needed.
async fn reach_rpc_server(ctx: &Ctx) -> Result<TcpStream, String> {
    let mut rpc = ctx.rpc.lock().await;
    if let Some(running) = rpc.as_mut() {
        if matches!(running.child.try_wait(), Ok(None)) {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", running.port)).await {
                return Ok(s);
            }
        }
    }
    let started = start_rpc_server(ctx).await?;
    let port = started.port;
    *rpc = Some(started);
    TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("its model runtime did not take the connection ({e})"))
}

async fn start_rpc_server(ctx: &Ctx) -> Result<RpcServer, String> {
    let path = rpc_server_beside(&ctx.lender.runtime.path).map_err(|e| e.to_string())?;
    let port = crate::server::free_port().map_err(|e| e.to_string())?;
    let runtime = Runtime {
        path: path.clone(),
        ..ctx.lender.runtime.clone()
    };
    let mut cmd = runtime.command();
    // Loopback only, whatever the listener's address: the tunnel is the only way in.
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string(), "-c"]);
    if !ctx.opts.use_gpu {
        cmd.args(["-d", "CPU"]);
    }
    cmd.env("LLAMA_CACHE", &ctx.cache)
        .env("GGML_RPC_NO_RDMA", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    crate::server::process::harden(&mut cmd);
    let child = cmd
        .spawn()
        .map_err(|e| format!("its model runtime could not start ({e})"))?;
    if let Some(pid) = child.id() {
        let _ = crate::server::owners::record(&ctx.servers, pid, port, &path);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(RpcServer { child, port });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("its model runtime did not start within 30 s".into())
}

/// Removes the oldest files of the RPC cache until it holds at most `limit` bytes.
/// Returns the bytes removed.
pub fn prune_cache(dir: &Path, limit: u64) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            m.is_file().then(|| {
                (
                    m.modified().unwrap_or(std::time::UNIX_EPOCH),
                    m.len(),
                    e.path(),
                )
            })
        })
        .collect();
    files.sort();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    let mut removed = 0;
    for (_, len, path) in files {
        if total <= limit {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
            removed += len;
        }
    }
    removed
}

/// The bytes the RPC cache holds now.
pub fn cache_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_uses_this_mac_is_said_when_it_changes() {
        let mut before = Users::new();
        let mut after = Users::new();
        after.insert(
            "Studio".into(),
            Use {
                memory: 2,
                model_server: 0,
            },
        );
        assert_eq!(
            using_changes(&before, &after),
            ["Studio is using this Mac's memory (a share of a model)"]
        );
        before.clone_from(&after);
        after.get_mut("Studio").unwrap().model_server = 1;
        assert_eq!(
            using_changes(&before, &after),
            ["Studio is using this Mac's memory and its model server"]
        );
        assert!(
            using_changes(&after, &after).is_empty(),
            "nothing changed, nothing said"
        );
        before.clone_from(&after);
        after.get_mut("Studio").unwrap().memory = 3;
        assert!(
            using_changes(&before, &after).is_empty(),
            "one more link is no news"
        );
        assert_eq!(
            using_changes(&after, &Users::new()),
            ["Studio stopped using this Mac"]
        );
    }

    #[test]
    fn the_cache_is_pruned_oldest_first_to_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in ["old", "mid", "new"].iter().enumerate() {
            let p = dir.path().join(name);
            std::fs::write(&p, vec![0u8; 1000]).unwrap();
            let t = std::time::SystemTime::now() - Duration::from_secs(100 - i as u64 * 10);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        assert_eq!(prune_cache(dir.path(), 2500), 1000);
        assert!(!dir.path().join("old").exists());
        assert!(dir.path().join("new").exists());
        assert_eq!(cache_bytes(dir.path()), 2000);
    }
}
