//! `kindling serve --with MAC`: a model too big for this Mac, served with a paired Mac's
//! memory. The plan first; then the pooled server, watched: when a helper stops
//! answering, the server is stopped, the owner told which Mac it was, and the model
//! served again without it when the Macs left can hold it.

use kindling_core::peers::plan::Plan;
use kindling_core::peers::pool::{self, Planned, Watch};
use kindling_core::peers::{this_mac_name, PeerError};
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
        if let Some(relay) = core
            .route(&model, &planned, port, &me, Watch::default())
            .await?
        {
            let network = relay.door_addr().is_some_and(|a| a.ip().is_unspecified());
            println!(
                "Apps on this Mac use http://127.0.0.1:{port}/v1 as before{}; {} answers. Press Ctrl-C to stop.",
                if network { " (other devices too, with the key)" } else { "" },
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
        if let Some(predicted) = pooled.planned.predicted_tok_s() {
            // Measured before "Split with …": nothing else asks the model meanwhile.
            tokio::select! {
                _ = cancel.cancelled() => {}
                measured = core.measure_served(&pooled.server) => match measured {
                    Ok(tok_s) => println!("Measured: {tok_s:.1} tokens/s (the plan predicted {predicted:.1})."),
                    Err(e) => eprintln!("Could not measure its speed ({e}); it serves all the same."),
                },
            }
        }
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
                match pool::lost_now(&pooled.relays) {
                    Some(lost) => Some(lost),
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
    *with = pool::without(with, name);
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
    for line in planned.lines(&name) {
        println!("{line}");
    }
}
