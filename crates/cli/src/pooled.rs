//! `kindling serve --with MAC`: a model too big for this Mac, served with a paired Mac's
//! memory. The plan first; then the pooled server, watched: when a helper stops
//! answering, the server is stopped, the owner told which Mac it was, and the model
//! served again without it when the Macs left can hold it.

use kindling_core::peers::plan::{Place, Plan};
use kindling_core::peers::pool::{Planned, Watch};
use kindling_core::peers::{this_mac_name, PeerError};
use kindling_core::units::format_bytes;
use kindling_core::{Cancel, Core, Result};

pub async fn serve_with(core: &Core, args: crate::serve::Args, cancel: &Cancel) -> Result<()> {
    let model = crate::pick_model(core, args.model)?;
    let me = core.caller(&this_mac_name(args.name.as_deref()))?;
    let port = args.port.unwrap_or(core.settings().port);
    let mut with = args.with.clone();
    let mut planned = core
        .plan_with(&model, &with, args.local_memory, &me)
        .await?;
    print_plan(&planned, &model);
    if args.plan {
        return Ok(());
    }
    loop {
        if let Some(relay) = core.route(&planned, port, &me, Watch::default()).await? {
            println!(
                "Apps on this Mac use http://127.0.0.1:{port}/v1 as before; {} answers. Press Ctrl-C to stop.",
                relay.peer
            );
            let lost = tokio::select! {
                _ = cancel.cancelled() => None,
                e = relay.lost() => Some(e),
            };
            relay.stop();
            let Some(lost) = lost else {
                println!("Stopped sending requests to {}.", relay.peer);
                return Ok(());
            };
            eprintln!("{lost}");
            let name = relay.peer.clone();
            drop(relay);
            planned = without(core, &model, &mut with, &name, lost, args.local_memory, &me).await?;
            continue;
        }
        eprintln!("Starting the model server with {} …", model.display());
        let pooled = core
            .serve_pooled(&model, Some(port), planned, &me, Watch::default(), cancel)
            .await?;
        crate::serve::announce(&pooled.server, pooled.registered.info.name.as_deref(), "");
        if !pooled.relays.is_empty() {
            let names: Vec<&str> = pooled.relays.iter().map(|r| r.peer.as_str()).collect();
            println!(
                "Split with {}: each Mac holds its share. Press Ctrl-C to stop.",
                names.join(" and ")
            );
        } else {
            println!("Press Ctrl-C to stop.");
        }
        let lost = tokio::select! {
            _ = cancel.cancelled() => None,
            e = pooled.lost() => Some(e),
            e = pooled.server.died() => {
                // A helper that went away takes the server with it: say which Mac.
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                match pooled.relays.iter().find_map(|r| r.lost_now().map(|how| (r.peer.clone(), how))) {
                    Some((name, how)) => Some(PeerError::Lost { name, how }),
                    None => {
                        pooled.stop().await;
                        return Err(e.into());
                    }
                }
            }
        };
        pooled.stop().await;
        let Some(lost) = lost else {
            println!("Stopped the model server.");
            return Ok(());
        };
        eprintln!("{lost}");
        let PeerError::Lost { name, .. } = &lost else {
            return Err(lost.into());
        };
        let name = name.clone();
        planned = without(core, &model, &mut with, &name, lost, args.local_memory, &me).await?;
    }
}

/// The plan again without `name`, the Mac that was `lost` (taken out of `with`); the
/// loss itself when the Macs left cannot hold the model.
async fn without(
    core: &Core,
    model: &std::path::Path,
    with: &mut Vec<String>,
    name: &str,
    lost: PeerError,
    local_memory: Option<u64>,
    me: &kindling_core::peers::relay::Caller,
) -> Result<Planned> {
    with.retain(|w| !name.to_lowercase().starts_with(&w.to_lowercase()));
    let planned = core.plan_with(model, with, local_memory, me).await?;
    if let Plan::TooBig { .. } = planned.plan {
        eprintln!("Without {name} the model does not fit: serving stopped. When {name} is back, start again.");
        return Err(lost.into());
    }
    eprintln!("Serving it again without {name}.");
    print_plan(&planned, model);
    Ok(planned)
}

fn print_plan(planned: &Planned, model: &std::path::Path) {
    let name = model
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    if let Some(r) = planned.route.and_then(|i| planned.reached.get(i)) {
        println!(
            "{name} does not fit where this Mac runs it fast, and {} serves it already: this Mac's apps are sent there ({:.1} ms away). Nothing is split, nothing copied.",
            r.peer.name,
            r.rtt.as_secs_f64() * 1000.0
        );
        return;
    }
    match &planned.plan {
        Plan::Alone { bytes, room } => println!(
            "{name} fits this Mac ({} of the {} it may use): it is not split.",
            format_bytes(*bytes),
            format_bytes(*room)
        ),
        Plan::TooBig { need, room } => println!(
            "{name} needs {}; together these Macs have {} for it.",
            format_bytes(*need),
            format_bytes(*room)
        ),
        Plan::Split {
            shares,
            predicted_tok_s,
            alone_tok_s,
        } => {
            let layers: u32 = shares.iter().map(|s| s.layers).sum();
            println!("Plan for {name}, split by its {layers} layers:");
            let width = shares
                .iter()
                .map(|s| s.who.chars().count())
                .max()
                .unwrap_or(0);
            for share in shares
                .iter()
                .filter(|s| s.layers > 0 || s.place == Place::Processor)
            {
                let what = match share.place {
                    Place::Processor => format!("{} layers, embeddings and output", share.layers),
                    _ => format!("{} layers", share.layers),
                };
                let room = planned.room(&share.place);
                let link = room
                    .and_then(|r| r.rtt_s)
                    .map(|r| format!(", {:.1} ms away", r * 1000.0))
                    .unwrap_or_default();
                println!(
                    "  {:<width$}  {what}: {} of the {} it allows{link}",
                    share.who,
                    format_bytes(share.bytes),
                    format_bytes(room.map_or(0, |r| r.memory_bytes))
                );
            }
            println!(
                "Predicted speed: {predicted_tok_s:.1} tokens/s (this Mac alone would do {alone_tok_s:.1} if it could hold it)."
            );
        }
    }
}
