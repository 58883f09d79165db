//! `kindling cleanup [--apply PLAN] [--delete]`

use kindling_core::cleanup::ApplyMode;
use kindling_core::{Core, Result};

use crate::format;

#[derive(clap::Args)]
pub struct Args {
    /// Apply a plan made earlier (its id, as printed by `kindling cleanup`).
    #[arg(long, value_name = "PLAN")]
    apply: Option<String>,
    /// With --apply: delete for good instead of moving to the Trash.
    #[arg(long, requires = "apply")]
    delete: bool,
    /// Print the plan or the result as JSON (for scripts).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(core: &Core, args: Args) -> Result<()> {
    if let Some(id) = args.apply {
        let mode = if args.delete {
            ApplyMode::Delete
        } else {
            ApplyMode::Trash
        };
        let applied = core.cleanup_apply(&id, &[], mode).await?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&applied).expect("serializes")
            );
            return Ok(());
        }
        let whereto = if args.delete {
            "deleted"
        } else {
            "moved to the Trash"
        };
        println!(
            "Reclaimed {} ({} items {whereto}).",
            format::bytes(applied.bytes),
            applied.removed.len()
        );
        for (item, why) in &applied.skipped {
            println!("  Left {}: {why}", item.path.display());
        }
        return Ok(());
    }
    let (id, plan) = core.cleanup_plan().await?;
    if args.json {
        println!("{}", serde_json::json!({"plan_id": id, "plan": plan}));
        return Ok(());
    }
    for w in &plan.warnings {
        println!("Note: {w}");
    }
    if plan.items.is_empty() {
        println!("Nothing to reclaim: no orphaned or unfinished model files were found.");
    } else {
        println!(
            "Kindling can reclaim {}:",
            format::bytes(plan.total_bytes())
        );
        for (reason, (n, bytes)) in plan.by_reason() {
            println!("  {:>9}  {n} × {}", format::bytes(bytes), reason.describe());
        }
        println!();
        for item in &plan.items {
            println!(
                "  {:>9}  {}",
                format::bytes(item.bytes),
                item.path.display()
            );
        }
        println!();
        println!(
            "Nothing was removed yet. To move these to the Trash: kindling cleanup --apply {id}"
        );
    }
    for d in &plan.duplicates {
        println!(
            "Stored twice ({} each, kept): {}",
            format::bytes(d.bytes),
            d.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        );
    }
    Ok(())
}
