//! Plain-words formatting shared by the commands.

use kindling_core::hardware::{HardwareProfile, VulkanDevice};

pub use kindling_core::hardware::format_bytes as bytes;

/// A label and a value, aligned.
pub fn row(label: &str, value: &str) {
    println!("  {label:<18} {value}");
}

pub fn cores(hw: &HardwareProfile) -> String {
    match hw.physical_cores {
        Some(p) if p != hw.logical_cores => format!("{p} cores, {} threads", hw.logical_cores),
        Some(p) => format!("{p} cores"),
        None => format!("{} threads", hw.logical_cores),
    }
}

pub fn devices(devices: &[VulkanDevice]) -> String {
    if devices.is_empty() {
        return "none usable — models run on the processor".into();
    }
    devices
        .iter()
        .map(|d| match (d.total_bytes, d.free_bytes) {
            (Some(t), Some(f)) => format!("{} ({} {}, {} free)", d.id, d.name, bytes(t), bytes(f)),
            _ => format!("{} ({})", d.id, d.name),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn seconds(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

pub use kindling_core::bench::verdict;

/// How a column lines up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Rows as lines of aligned columns, each as wide as its widest cell (counted in
/// characters, so a long quant name like `QAT-UD-Q4_K_XL` or a marker like `ʳ` never
/// shifts the columns after it); the last column is left as it is. Columns are two
/// spaces apart, so a full-width name ("Llama 3.2 1B Instruct") does not run into the
/// quant beside it.
pub fn table(align: &[Align], rows: &[Vec<String>]) -> Vec<String> {
    let width = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..align.len()).map(width).collect();
    rows.iter()
        .map(|r| {
            let mut line = String::new();
            for (i, cell) in r.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(cell.chars().count());
                let last = i + 1 == r.len();
                match align.get(i).copied().unwrap_or(Align::Left) {
                    Align::Right => {
                        line.push_str(&" ".repeat(pad));
                        line.push_str(cell);
                    }
                    Align::Left => {
                        line.push_str(cell);
                        if !last {
                            line.push_str(&" ".repeat(pad));
                        }
                    }
                }
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `kindling recommend` misaligned every column after a long quant name.
    #[test]
    fn columns_line_up_whatever_their_contents() {
        let rows = vec![
            vec![
                "MODEL".into(),
                "QUANT".into(),
                "SCORE".into(),
                "WHERE".into(),
            ],
            vec![
                "Gemma 4 E4B".into(),
                "Q4_K_M".into(),
                "92%".into(),
                "GPU".into(),
            ],
            vec![
                "Gemma 4 31B".into(),
                "QAT-UD-Q4_K_XL".into(),
                "94%ʳ".into(),
                "processor".into(),
            ],
        ];
        let lines = table(
            &[Align::Left, Align::Left, Align::Right, Align::Left],
            &rows,
        );
        let at = |l: &str, what: &str| l.find(what).map(|b| l[..b].chars().count());
        assert_eq!(at(&lines[0], "QUANT"), at(&lines[2], "QAT-UD"));
        let wheres: Vec<Option<usize>> = ["WHERE", "GPU", "processor"]
            .iter()
            .zip(&lines)
            .map(|(w, l)| at(l, w))
            .collect();
        assert!(wheres.iter().all(|w| *w == wheres[0]), "{lines:#?}");
        assert!(lines[1].ends_with("GPU"), "no trailing spaces: {lines:?}");
    }
}
