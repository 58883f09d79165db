//! `kindling pair`, `kindling peers`, `kindling unpair`, `kindling share`: another Mac
//! in the house, paired by a code, lending its memory.

use std::net::IpAddr;

use kindling_core::peers::pairing::{self, Me};
use kindling_core::peers::relay;
use kindling_core::peers::share::{Helper, ShareOptions, DEAD_AFTER, HEARTBEAT};
use kindling_core::peers::{this_mac_name, PeerError, DEFAULT_SHARE_PORT};
use kindling_core::units::{format_bytes, parse_bytes};
use kindling_core::{Cancel, Core, Result};

#[derive(clap::Args)]
pub struct PairArgs {
    /// The code the other Mac shows. Without it, this Mac shows a code to type there.
    code: Option<String>,
    /// Where the other Mac is (its address, or `name.local`), with `:port` if it shares
    /// on another port than 11490.
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
    let identity = core.identity()?;
    match (args.code, args.at) {
        (Some(code), Some(at)) => {
            let me = Me {
                identity: &identity,
                name: name.clone(),
                build: core.runtime_build(),
                share_port: DEFAULT_SHARE_PORT,
            };
            let peer = pairing::pair_with(&at, &code, &me).await?;
            core.book().add(peer.clone()).map_err(PeerError::from)?;
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
        (Some(_), None) => Err(PeerError::Pairing {
            why: "say where the other Mac is, with --at ADDRESS".into(),
        }
        .into()),
        (None, _) => {
            // Showing a code: listen for one pairing only; lend nothing meanwhile.
            let opts = ShareOptions {
                host: args.host.unwrap_or_else(any_host),
                port: args.port.unwrap_or(DEFAULT_SHARE_PORT),
                memory_bytes: 0,
                use_gpu: false,
                cache_limit_bytes: 0,
                heartbeat: HEARTBEAT,
                dead_after: DEAD_AFTER,
            };
            let (helper, _) = open_helper(core, &name, opts).await?;
            let code = helper.show_code();
            println!("Pairing code: {code}");
            println!(
                "On the other Mac, type it in Kindling, or run: kindling pair {} --at {}",
                pairing::digits(&code),
                reach_hint(&helper)
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

/// How the other Mac reaches this one: its address on the house's network and port.
fn reach_hint(helper: &Helper) -> String {
    let addr = helper.local_addr();
    let ip = if addr.ip().is_unspecified() {
        local_ip().unwrap_or_else(|| "THIS-MAC-ADDRESS".into())
    } else {
        addr.ip().to_string()
    };
    if addr.port() == DEFAULT_SHARE_PORT {
        ip
    } else {
        format!("{ip}:{}", addr.port())
    }
}

/// This machine's address on the local network (the one a route to the outside uses;
/// no packet is sent).
fn local_ip() -> Option<String> {
    let s = std::net::UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    s.connect(("192.168.0.1", 9)).ok()?;
    Some(s.local_addr().ok()?.ip().to_string())
}

pub async fn share(core: &Core, args: ShareArgs, cancel: &Cancel) -> Result<()> {
    let name = this_mac_name(args.name.as_deref());
    let ram = core.detect().await.hardware.ram_total_bytes;
    let opts = ShareOptions {
        host: args.host.unwrap_or_else(any_host),
        port: args.port.unwrap_or(DEFAULT_SHARE_PORT),
        memory_bytes: args.memory.unwrap_or(ram / 2),
        use_gpu: !args.no_gpu,
        cache_limit_bytes: args.cache_limit.unwrap_or(20_000_000_000),
        heartbeat: HEARTBEAT,
        dead_after: DEAD_AFTER,
    };
    let memory = opts.memory_bytes;
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
        reach_hint(&helper)
    );
    if args.pair {
        let code = helper.show_code();
        println!(
            "Pairing code: {code} (on the other Mac: kindling pair {} --at {})",
            pairing::digits(&code),
            reach_hint(&helper)
        );
    }
    println!("Press Ctrl-C to stop.");
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
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

/// One paired Mac as `kindling peers` shows it.
#[derive(serde::Serialize)]
struct Row {
    name: String,
    address: Option<String>,
    paired_at: String,
    reachable: bool,
    offer: Option<kindling_core::peers::Offer>,
    build: Option<u32>,
    problem: Option<String>,
    rtt_ms: Option<f64>,
}

pub async fn list(core: &Core, json: bool, name: Option<String>) -> Result<()> {
    let peers = core.book().list().map_err(PeerError::from)?;
    let me = core.caller(&this_mac_name(name.as_deref()))?;
    let mut rows = Vec::new();
    for peer in peers {
        let reached = relay::reach(&peer, &me).await;
        rows.push(match reached {
            Ok(r) => Row {
                name: peer.name.clone(),
                address: peer.address.clone(),
                paired_at: peer.paired_at.clone(),
                reachable: true,
                build: peer.build,
                offer: Some(r.offer),
                problem: None,
                rtt_ms: Some(r.rtt.as_secs_f64() * 1000.0),
            },
            Err(e) => Row {
                name: peer.name.clone(),
                address: peer.address.clone(),
                paired_at: peer.paired_at.clone(),
                reachable: false,
                build: peer.build,
                offer: None,
                problem: Some(e.to_string()),
                rtt_ms: None,
            },
        });
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("rows serialize")
        );
        return Ok(());
    }
    if rows.is_empty() {
        println!("This Mac is not paired with another yet. On the other Mac run `kindling pair`, then type its code here with `kindling pair CODE --at ADDRESS`.");
        return Ok(());
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
                println!("  reachable, {:.1} ms away", r.rtt_ms.unwrap_or(0.0));
            }
            (None, Some(p)) => println!("  not reachable now: {p}"),
            (None, None) => {}
        }
    }
    Ok(())
}
