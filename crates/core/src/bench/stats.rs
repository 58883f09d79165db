//! Small statistics for repeated measurements: median and spread.

use serde::{Deserialize, Serialize};

/// The figures for one quantity measured several times.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// (max − min) ÷ median, in percent: how much the repetitions disagreed.
    pub spread_pct: f64,
    pub n: usize,
}

impl Stat {
    /// `None` for no values (or only NaNs).
    pub fn of(values: &[f64]) -> Option<Stat> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        let (min, max) = (v[0], v[n - 1]);
        let spread_pct = if median != 0.0 {
            (max - min) / median.abs() * 100.0
        } else {
            0.0
        };
        Some(Stat {
            median,
            min,
            max,
            spread_pct,
            n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case<'a> = (&'a [f64], Option<(f64, f64, f64)>);

    #[test]
    fn table() {
        let cases: &[Case] = &[
            (&[], None),
            (&[f64::NAN], None),
            (&[5.0], Some((5.0, 5.0, 5.0))),
            (&[3.0, 1.0, 2.0], Some((2.0, 1.0, 3.0))),
            (&[4.0, 1.0, 3.0, 2.0], Some((2.5, 1.0, 4.0))),
            (&[10.0, f64::NAN, 30.0, 20.0], Some((20.0, 10.0, 30.0))),
        ];
        for (input, expected) in cases {
            let got = Stat::of(input).map(|s| (s.median, s.min, s.max));
            assert_eq!(got, *expected, "{input:?}");
        }
        assert_eq!(Stat::of(&[9.0, 10.0, 11.0]).unwrap().spread_pct, 20.0);
    }
}
