//! `kindling recommend --with`: what two Macs can run together that neither runs fast
//! alone, planned from their profiles (recorded there, or shipped), over a link assumed
//! to be 1 Gbit/s with a 1 ms round trip (wired; Wi-Fi is slower and says so in the note).

use serde::Serialize;

use super::machine::{profile, MachineFile};
use crate::catalog::Catalog;
use crate::peers::plan::{self, Plan, Room, Shape};

/// The link the plan assumes between the two.
pub const ASSUMED_RTT_S: f64 = 0.001;

/// One catalog model for the pair.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PairRow {
    pub family: String,
    pub quant: String,
    pub bytes: u64,
    /// Which Mac serves it (the other lends its memory), and the speed to expect.
    pub serving: String,
    pub predicted_tok_s: f64,
    /// Each Mac's share, in layers.
    pub shares: Vec<plan::Share>,
}

/// The models the pair runs split that neither Mac runs fast alone, fastest first.
pub fn pair_only(
    catalog: &Catalog,
    a: (&str, &MachineFile),
    b: (&str, &MachineFile),
    ctx: u64,
) -> Vec<PairRow> {
    let side = |file: &MachineFile| {
        let (machine, _, _) = profile(&file.hardware, file.memory_bandwidth_bytes_per_second);
        let device = file.hardware.vulkan_devices.first().map(|d| d.id.clone());
        (machine, device)
    };
    let (ma, da) = side(a.1);
    let (mb, db) = side(b.1);
    let mut rows = Vec::new();
    for f in &catalog.families {
        for v in &f.variants {
            let shape = Shape::from_catalog(f, v, ctx);
            let alone = |m, d: &Option<String>| {
                let (here, gpu) = plan::rooms_of(m, d.as_deref(), None, &shape);
                matches!(
                    plan::plan(&shape, &here, gpu.as_ref(), &[]),
                    Plan::Alone { .. }
                )
            };
            if alone(&ma, &da) || alone(&mb, &db) {
                continue;
            }
            // Either may serve; the faster plan wins.
            let best = [((a.0, &ma, &da), (b.0, &mb)), ((b.0, &mb, &db), (a.0, &ma))]
                .into_iter()
                .filter_map(|((name, m, d), (helper, hm))| {
                    // Recorded profiles carry no runs: the default share of their
                    // memory's speed, as the single-Mac predictions use.
                    let eff = super::fit::DEFAULT_EFFICIENCY;
                    let (here, gpu) = plan::rooms_of(m, d.as_deref(), None, &shape);
                    let here = here.at_efficiency(eff);
                    let gpu = gpu.map(|g| plan::GpuRoom {
                        room: g.room.at_efficiency(eff),
                        ..g
                    });
                    let ram = hm.ram_bytes;
                    let cap = ram.saturating_sub(super::fit::ram_reserve(ram));
                    let (_, bandwidth, memory_bytes) = plan::lent(hm, cap, true);
                    let lent = Room {
                        who: helper.to_string(),
                        memory_bytes,
                        bandwidth,
                        rtt_s: Some(ASSUMED_RTT_S),
                        link_bytes_per_s: None,
                    }
                    .at_efficiency(eff);
                    match plan::plan(&shape, &here, gpu.as_ref(), &[lent]) {
                        Plan::Split {
                            shares,
                            predicted_tok_s,
                            ..
                        } => Some((name, shares, predicted_tok_s)),
                        _ => None,
                    }
                })
                .max_by(|x, y| x.2.total_cmp(&y.2));
            if let Some((serving, shares, predicted_tok_s)) = best {
                let mut shares = shares;
                for s in &mut shares {
                    if s.who == "This Mac" || s.who == "This Mac (GPU)" {
                        s.who = s.who.replace("This Mac", serving);
                    }
                }
                rows.push(PairRow {
                    family: f.name.clone(),
                    quant: v.quant.clone(),
                    bytes: v.bytes(),
                    serving: serving.to_string(),
                    predicted_tok_s,
                    shares,
                });
            }
        }
    }
    rows.sort_by(|x, y| y.predicted_tok_s.total_cmp(&x.predicted_tok_s));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field report's pair: the 2017 iMac (4 GB Radeon Pro 575) and a 24 GB Apple
    /// Silicon Mac (the shipped Mac mini M4 Pro profile). Gemma 4 31B Q4 (17.5 GB) runs
    /// fast on neither alone; together it does.
    #[test]
    fn the_field_reports_pair_runs_what_neither_mac_runs_fast_alone() {
        let catalog = Catalog::builtin();
        let imac = MachineFile::find("imac-2017").unwrap();
        let mini = MachineFile::find("mac-mini-m4-pro-24gb").unwrap();
        let rows = pair_only(&catalog, ("iMac", &imac), ("Mac mini", &mini), 4096);
        assert!(!rows.is_empty());
        let big: Vec<&PairRow> = rows.iter().filter(|r| r.bytes > 15_000_000_000).collect();
        assert!(!big.is_empty(), "{rows:#?}");
        for r in &rows {
            assert!(r.predicted_tok_s > 0.0, "{r:?}");
            let layers: u32 = r.shares.iter().map(|s| s.layers).sum();
            assert!(layers > 0, "{r:?}");
            assert!(
                r.shares.iter().filter(|s| s.layers > 0).count() >= 2,
                "{r:?}"
            );
        }
    }
}
