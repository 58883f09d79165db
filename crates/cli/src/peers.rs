//! `kindling pair`, `kindling peers`, `kindling unpair`, `kindling share`: another Mac
//! in the house, paired by a code, lending its memory.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::on_ask::ShareStarts;

use kindling_core::hardware::power::LendWhen;
use kindling_core::peers::on_ask::{OnAsk, STOP_UNUSED_AFTER};
use kindling_core::peers::pairing;
use kindling_core::peers::share::{
    using_changes, DoorKey, Helper, ShareOptions, DEAD_AFTER, HEARTBEAT,
};
use kindling_core::peers::{this_mac_name, PeerError, DEFAULT_SHARE_PORT};
use kindling_core::units::{format_bytes, parse_bytes};
use kindling_core::{Cancel, Core, Result};

#[derive(clap::Args)]
pub struct PairArgs {
    /// The code the other Mac shows. Without it, this Mac shows a code to type there.
    code: Option<String>,
    /// Where the other Mac is (its address, or `name.local`), with `:port` if it shares
    /// on another port than 11490. Without it, the Mac on this network that shows a code
    /// now is found by itself (Bonjour).
    #[arg(long, value_name = "ADDRESS", requires = "code")]
    at: Option<String>,
    /// This Mac's name as the other Mac will show it (default: the computer's name).
    #[arg(long)]
    name: Option<String>,
    /// The port to show the code on (default 11490).
    #[arg(long, value_name = "N", conflicts_with = "code")]
    port: Option<u16>,
    /// The address to listen on while showing the code (default: every network).
    #[arg(long, value_name = "IP", conflicts_with = "code")]
    host: Option<IpAddr>,
}

#[derive(clap::Args)]
pub struct ShareArgs {
    /// The most memory a share of a model may take here, e.g. 16GB (default: half of
    /// this Mac's memory).
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    memory: Option<u64>,
    /// Do the work on the processor only, leaving the GPU to this Mac's own use.
    #[arg(long)]
    no_gpu: bool,
    /// Also show a pairing code (good for one try, for ten minutes).
    #[arg(long)]
    pair: bool,
    /// This Mac's name as the other Macs show it (default: the computer's name).
    #[arg(long)]
    name: Option<String>,
    #[arg(long, value_name = "N")]
    port: Option<u16>,
    /// The address to listen on (default: every network of this Mac).
    #[arg(long, value_name = "IP")]
    host: Option<IpAddr>,
    /// The most disk the cache of other Macs' model parts may keep (default 20GB).
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    cache_limit: Option<u64>,
    /// The port of this Mac's own model server, which paired Macs may send requests to
    /// for the models it serves (default: the server port in Settings).
    #[arg(long, value_name = "N", conflicts_with = "no_route")]
    serve_port: Option<u16>,
    /// Lend only memory: paired Macs may not use this Mac's own model server.
    #[arg(long)]
    no_route: bool,
    /// Never start a model for a paired Mac (by default, while this Mac serves nothing,
    /// a paired Mac may ask it to serve a model it has on its disk that fits here).
    #[arg(long)]
    no_start: bool,
    /// Stop a model started for a paired Mac once none has used it for this many
    /// seconds (default 600).
    #[arg(long, value_name = "SECONDS")]
    stop_unused_after: Option<u64>,
    /// Lend on battery too (by default a Mac lends only while plugged in: a model at
    /// work drains a battery in an hour or two).
    #[arg(long)]
    on_battery: bool,
    /// Lend only while the lid is open (by default a Mac plugged in with its lid closed
    /// still lends, as it does with a display attached).
    #[arg(long)]
    lid_open_only: bool,
}

fn any_host() -> IpAddr {
    IpAddr::from([0, 0, 0, 0])
}

async fn open_helper(
    core: &Core,
    name: &str,
    opts: ShareOptions,
) -> Result<(Helper, kindling_core::peers::Offer)> {
    let lender = core.lender(name, &opts).await?;
    let offer = lender.offer.clone();
    let helper = Helper::open(core.identity()?, core.book(), lender, opts, core.paths()).await?;
    Ok((helper, offer))
}

pub async fn pair(core: &Core, args: PairArgs, cancel: &Cancel) -> Result<()> {
    let name = this_mac_name(args.name.as_deref());
    match args.code {
        Some(code) => {
            let peer = core
                .pair_with_code(&code, args.at.as_deref(), &name)
                .await?;
            println!(
                "Paired with {} ({}). This Mac is \"{name}\" there.",
                peer.name,
                peer.address.as_deref().unwrap_or("")
            );
            println!(
                "Use it for a model too big for this Mac: kindling serve --with \"{}\" (add --plan to see the plan first).",
                peer.name
            );
            Ok(())
        }
        None => {
            // Showing a code: listen for one pairing only; lend nothing meanwhile.
            let opts = ShareOptions {
                host: args.host.unwrap_or_else(any_host),
                port: args.port.unwrap_or(DEFAULT_SHARE_PORT),
                memory_bytes: 0,
                use_gpu: false,
                cache_limit_bytes: 0,
                heartbeat: HEARTBEAT,
                dead_after: DEAD_AFTER,
                serve_port: None,
                lend_when: LendWhen::default(),
                on_ask: None,
                stop_unused_after: STOP_UNUSED_AFTER,
                door_key: None,
            };
            let (helper, _) = open_helper(core, &name, opts).await?;
            let code = helper.show_code();
            println!("Pairing code: {code}");
            println!(
                "On the other Mac, type it in Kindling, or run: {}",
                type_there(&helper, &code)
            );
            println!("The code works once, for ten minutes. Press Ctrl-C to stop.");
            let outcome = tokio::select! {
                _ = cancel.cancelled() => Err(kindling_core::Error::Cancelled),
                _ = tokio::time::sleep(pairing::CODE_LIFETIME) => Err(PeerError::Pairing {
                    why: "nobody typed the code within ten minutes".into(),
                }.into()),
                p = helper.next_pairing() => p.map_err(Into::into),
            };
            helper.stop().await;
            let peer = outcome?;
            println!("Paired with {}. It can now use this Mac's memory while this Mac shares (kindling share).", peer.name);
            Ok(())
        }
    }
}

/// What to type on the other Mac: the code alone when this Mac is announced on the
/// network (the other finds it), its address too for a Mac on another network.
fn type_there(helper: &Helper, code: &str) -> String {
    let digits = pairing::digits(code);
    if helper.announced() {
        format!(
            "kindling pair {digits} (from another network: kindling pair {digits} --at {})",
            helper.reach_hint()
        )
    } else {
        format!("kindling pair {digits} --at {}", helper.reach_hint())
    }
}

pub async fn share(core: &Arc<Core>, args: ShareArgs, cancel: &Cancel) -> Result<()> {
    let name = this_mac_name(args.name.as_deref());
    let ram = core.detect().await.hardware.ram_total_bytes;
    let settings = core.settings();
    let serve_port = (!args.no_route).then(|| args.serve_port.unwrap_or(settings.port));
    let starts = serve_port.filter(|_| !args.no_start).map(|port| {
        Arc::new(ShareStarts {
            core: core.clone(),
            port,
            server: tokio::sync::Mutex::new(None),
        })
    });
    let opts = ShareOptions {
        host: args.host.unwrap_or_else(any_host),
        port: args.port.unwrap_or(DEFAULT_SHARE_PORT),
        memory_bytes: args.memory.unwrap_or_else(|| settings.lend_memory(ram)),
        use_gpu: !args.no_gpu && settings.lend_gpu,
        cache_limit_bytes: args.cache_limit.unwrap_or(20_000_000_000),
        heartbeat: HEARTBEAT,
        dead_after: DEAD_AFTER,
        serve_port,
        // The flags widen or narrow what the owner set in Settings.
        lend_when: LendWhen {
            plugged_in: !args.on_battery && !settings.lend_on_battery,
            lid_open: args.lid_open_only || settings.lend_lid_open_only,
        },
        on_ask: starts
            .clone()
            .map(|s| OnAsk(s as Arc<dyn kindling_core::peers::on_ask::StartsModels>)),
        stop_unused_after: args
            .stop_unused_after
            .map_or(STOP_UNUSED_AFTER, Duration::from_secs),
        door_key: Some(DoorKey({
            let core = core.clone();
            Arc::new(move || core.network_key())
        })),
    };
    let when = opts.lend_when;
    let memory = opts.memory_bytes;
    let opts_serve_port = opts.serve_port;
    let (helper, offer) = open_helper(core, &name, opts).await?;
    let how = match &offer.gpu {
        Some(gpu) => format!("on its {gpu}"),
        None => "on the processor".into(),
    };
    println!(
        "Sharing \"{name}\": up to {} of its memory, {how}, with the Macs it paired with.",
        format_bytes(memory)
    );
    println!(
        "They reach it at {} (encrypted; a Mac that was not paired gets nothing).",
        helper.reach_hint()
    );
    match (when.plugged_in, when.lid_open) {
        (true, true) => println!("It lends only while plugged in with its lid open."),
        (true, false) => {
            println!("It lends only while plugged in (--on-battery lends on battery too).")
        }
        (false, true) => println!("It lends only while its lid is open."),
        (false, false) => {}
    }
    if let Some(port) = opts_serve_port {
        println!(
            "They may also use the models this Mac's own server serves (port {port}) while it runs."
        );
    }
    if starts.is_some() {
        println!("While it serves nothing, they may ask it to serve a model it has that fits here (--no-start: never).");
    }
    if args.pair {
        let code = helper.show_code();
        println!(
            "Pairing code: {code} (on the other Mac: {})",
            type_there(&helper, &code)
        );
    }
    println!("Press Ctrl-C to stop.");
    let mut users = helper.users();
    let mut before = users.borrow().clone();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Ok(()) = users.changed() => {
                let now = users.borrow_and_update().clone();
                for line in using_changes(&before, &now) {
                    println!("{line}.");
                }
                before = now;
            }
            p = helper.next_pairing(), if args.pair => match p {
                Ok(peer) => println!("Paired with {}.", peer.name),
                Err(e) => eprintln!("{e}"),
            },
        }
    }
    helper.stop().await;
    println!("Stopped sharing.");
    Ok(())
}

pub async fn unpair(core: &Core, name: &str) -> Result<()> {
    let peer = core.book().remove(name).map_err(PeerError::from)?;
    println!(
        "Unpaired {}: it can no longer reach this Mac, nor this Mac it. To use it again, pair again.",
        peer.name
    );
    Ok(())
}

pub async fn list(core: &Core, json: bool, name: Option<String>) -> Result<()> {
    let me = this_mac_name(name.as_deref());
    let (rows, nearby) = tokio::join!(core.peer_statuses(&me), core.nearby_macs());
    let rows = rows?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("rows serialize")
        );
        return Ok(());
    }
    // What is heard on the network is a hint: not hearing it is no error.
    let strangers: Vec<_> = nearby
        .unwrap_or_default()
        .into_iter()
        .filter(|m| !m.paired)
        .collect();
    if rows.is_empty() {
        println!("This Mac is not paired with another yet. On the other Mac run `kindling pair`, then type its code here with `kindling pair CODE`.");
    }
    if !strangers.is_empty() {
        println!("On this network, not paired:");
        for m in &strangers {
            println!("  {}  {}", m.name, m.address);
        }
        println!("To pair with one, run `kindling pair` on it, then `kindling pair CODE` here.");
    }
    for r in rows {
        println!(
            "{}  {}",
            r.name,
            r.address.as_deref().unwrap_or("(reaches this Mac)")
        );
        match (&r.offer, &r.problem) {
            (Some(o), _) => {
                println!("  {}", o.summary);
                println!(
                    "  lends up to {}, {}; runtime {}",
                    format_bytes(o.memory_bytes),
                    o.gpu
                        .as_deref()
                        .map_or("on the processor".to_string(), |g| format!("on its {g}")),
                    o.runtime
                );
                if !o.serves.is_empty() {
                    println!(
                        "  serves {} (requests for it can be routed there)",
                        o.serves.join(", ")
                    );
                } else if !o.can_serve.is_empty() {
                    println!(
                        "  serves nothing now; would start {} if asked",
                        o.can_serve.join(", ")
                    );
                }
                println!("  reachable, {:.1} ms away", r.rtt_ms.unwrap_or(0.0));
            }
            (None, Some(p)) => println!("  not reachable now: {p}"),
            (None, None) => {}
        }
    }
    Ok(())
}
