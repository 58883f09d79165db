//! Whether two quality scores differ, or only seem to. Both candidates answer the same
//! tests, so they are compared test by test (a paired bootstrap, resampling tests within
//! each category, as the score is the mean of the category means), and the answer says
//! how sure it is: "answered alike (difference 1 point, within what 38 tests can tell)"
//! or "answered better (7 points, 95% sure)". When only the totals are known (a
//! published figure), a normal approximation over the test count stands in. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One test's score in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestScore {
    pub id: String,
    pub category: String,
    /// 0–1.
    pub score: f64,
}

/// Which of the two answered better, if either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Alike,
    FirstBetter,
    SecondBetter,
}

/// How the judgement was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Test by test, over the tests both answered.
    Paired,
    /// From the two totals and the number of tests (no per-test scores).
    Totals,
}

/// The judgement of one pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Judgement {
    pub verdict: Verdict,
    /// First minus second, in points (0–100 scale).
    pub difference: f64,
    /// The 95% interval of the difference, in points.
    pub low: f64,
    pub high: f64,
    /// How sure the better one is better (0.5–1); for alike, how sure of the sign seen.
    pub sure: f64,
    /// Tests the judgement rests on.
    pub tests: u32,
    pub method: Method,
}

/// Resamples drawn; the interval's ends move by well under a point between seeds.
const RESAMPLES: usize = 4000;
/// Fixed, so the same two runs are always judged the same.
const SEED: u64 = 0x6b69_6e64_6c69_6e67;

/// splitmix64: small, fast, and good enough to pick tests at random.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z % n as u64) as usize
    }
}

/// Compares two runs test by test over the tests both have; `None` when they share none.
pub fn paired(first: &[TestScore], second: &[TestScore]) -> Option<Judgement> {
    let theirs: BTreeMap<&str, f64> = second.iter().map(|t| (t.id.as_str(), t.score)).collect();
    // Per category, the per-test differences.
    let mut by_category: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for t in first {
        if let Some(s) = theirs.get(t.id.as_str()) {
            by_category
                .entry(t.category.as_str())
                .or_default()
                .push(t.score - s);
        }
    }
    let groups: Vec<Vec<f64>> = by_category.into_values().collect();
    let tests: usize = groups.iter().map(Vec::len).sum();
    if tests == 0 {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let observed = groups.iter().map(|g| mean(g)).sum::<f64>() / groups.len() as f64;
    let mut rng = Rng(SEED);
    let mut draws: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            groups
                .iter()
                .map(|g| (0..g.len()).map(|_| g[rng.below(g.len())]).sum::<f64>() / g.len() as f64)
                .sum::<f64>()
                / groups.len() as f64
        })
        .collect();
    draws.sort_by(f64::total_cmp);
    let low = draws[RESAMPLES * 25 / 1000];
    let high = draws[RESAMPLES * 975 / 1000 - 1];
    let same_sign = if observed >= 0.0 {
        draws.iter().filter(|d| **d > 0.0).count()
    } else {
        draws.iter().filter(|d| **d < 0.0).count()
    };
    Some(judge(
        observed,
        low,
        high,
        same_sign as f64 / RESAMPLES as f64,
        tests,
        Method::Paired,
    ))
}

/// Compares two totals (0–1) over `tests` tests each, when per-test scores are not known
/// (a published figure): each total's spread as a proportion's, the two independent.
pub fn from_totals(first: f64, second: f64, tests: u32) -> Judgement {
    let n = f64::from(tests.max(1));
    let var = |p: f64| p.clamp(0.0, 1.0) * (1.0 - p.clamp(0.0, 1.0)) / n;
    // Never narrower than one test's worth: a perfect score has a spread too.
    let se = (var(first) + var(second)).sqrt().max(1.0 / n);
    let d = first - second;
    let z = d.abs() / se;
    judge(
        d,
        d - 1.96 * se,
        d + 1.96 * se,
        normal_cdf(z),
        tests.max(1) as usize,
        Method::Totals,
    )
}

fn judge(d: f64, low: f64, high: f64, sure: f64, tests: usize, method: Method) -> Judgement {
    let verdict = if low > 0.0 {
        Verdict::FirstBetter
    } else if high < 0.0 {
        Verdict::SecondBetter
    } else {
        Verdict::Alike
    };
    Judgement {
        verdict,
        difference: d * 100.0,
        low: low * 100.0,
        high: high * 100.0,
        sure,
        tests: u32::try_from(tests).unwrap_or(u32::MAX),
        method,
    }
}

/// Φ(z), by the Abramowitz–Stegun 7.1.26 approximation of erf (error < 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    let p = 0.5 * (1.0 + erf);
    if z >= 0.0 {
        p
    } else {
        1.0 - p
    }
}

fn plural(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn points(p: f64) -> String {
    plural(p.abs().round() as u64, "point")
}

impl Judgement {
    /// Which one answered better, or none.
    pub fn better(&self) -> Option<bool> {
        match self.verdict {
            Verdict::Alike => None,
            Verdict::FirstBetter => Some(true),
            Verdict::SecondBetter => Some(false),
        }
    }

    /// "difference 1 point, within what 38 tests can tell".
    pub fn tie_clause(&self) -> String {
        format!(
            "difference {}, within what {} can tell",
            points(self.difference),
            plural(u64::from(self.tests), "test")
        )
    }

    /// "A and B answered alike (difference 1 point, within what 38 tests can tell)" or
    /// "A answered better than B (7 points, 95% sure)".
    pub fn sentence(&self, first: &str, second: &str) -> String {
        match self.better() {
            None => format!(
                "{first} and {second} answered alike ({})",
                self.tie_clause()
            ),
            Some(first_better) => {
                let (w, l) = if first_better {
                    (first, second)
                } else {
                    (second, first)
                };
                // "99% sure" at most: a few dozen tests never make anything certain.
                let sure = ((self.sure * 100.0).floor() as u64).min(99);
                format!(
                    "{w} answered better than {l} ({}, {sure}% sure)",
                    points(self.difference)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(json: &str) -> Vec<TestScore> {
        serde_json::from_str(json).unwrap()
    }

    fn chatml() -> Vec<TestScore> {
        recorded(include_str!(
            "../../tests/fixtures/scores/sample-quick-chatml.json"
        ))
    }

    fn gemma() -> Vec<TestScore> {
        recorded(include_str!(
            "../../tests/fixtures/scores/sample-quick-gemma.json"
        ))
    }

    #[test]
    fn a_run_against_itself_is_alike_with_no_difference() {
        let j = paired(&chatml(), &chatml()).unwrap();
        assert_eq!(j.verdict, Verdict::Alike);
        assert_eq!((j.difference, j.low, j.high), (0.0, 0.0, 0.0));
    }

    #[test]
    fn two_recorded_runs_eight_points_apart_on_one_test_are_a_tie() {
        // 13.5% and 5.2% read as a big gap; it is one test of ten (a refusal that an
        // echo passed by luck).
        let j = paired(&chatml(), &gemma()).unwrap();
        assert!((j.difference - 8.33).abs() < 0.1, "{j:?}");
        assert_eq!(j.verdict, Verdict::Alike, "{j:?}");
        assert_eq!(j.tests, 10);
        assert_eq!(
            j.sentence("ChatML", "Gemma"),
            "ChatML and Gemma answered alike (difference 8 points, within what 10 tests can tell)"
        );
    }

    #[test]
    fn a_real_difference_is_never_called_a_tie() {
        // The recorded run against one that answers every test it failed.
        let good: Vec<TestScore> = chatml()
            .into_iter()
            .map(|t| TestScore { score: 1.0, ..t })
            .collect();
        let j = paired(&good, &chatml()).unwrap();
        assert_eq!(j.verdict, Verdict::FirstBetter, "{j:?}");
        assert!(j.low > 50.0, "{j:?}");
        let s = j.sentence("Q8_0", "Q4_K_M");
        assert!(
            s.starts_with("Q8_0 answered better than Q4_K_M (86 points, 99% sure"),
            "{s}"
        );
        let j = paired(&chatml(), &good).unwrap();
        assert_eq!(j.verdict, Verdict::SecondBetter, "{j:?}");
    }

    #[test]
    fn the_field_reports_inverted_ladder_is_noise() {
        // Q4 92.2%, Q8 91.8%, BF16 91.2% on 39 tests: every pair is a tie.
        for (a, b) in [(0.922, 0.918), (0.918, 0.912), (0.922, 0.912)] {
            let j = from_totals(a, b, 39);
            assert_eq!(j.verdict, Verdict::Alike, "{a} vs {b}: {j:?}");
            assert!(
                j.high - j.low > 10.0,
                "an interval of {:.1} points",
                j.high - j.low
            );
        }
        assert_eq!(
            from_totals(0.922, 0.912, 39).sentence("Q4", "BF16"),
            "Q4 and BF16 answered alike (difference 1 point, within what 39 tests can tell)"
        );
        // 30 points apart on 39 tests is not noise.
        let j = from_totals(0.9, 0.6, 39);
        assert_eq!(j.verdict, Verdict::FirstBetter, "{j:?}");
        assert!(j.sure > 0.99, "{j:?}");
    }

    #[test]
    fn runs_that_share_no_test_cannot_be_compared() {
        let other = vec![TestScore {
            id: "elsewhere".into(),
            category: "reasoning".into(),
            score: 1.0,
        }];
        assert_eq!(paired(&chatml(), &other), None);
    }

    #[test]
    fn the_normal_cdf_is_right_where_it_matters() {
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-3);
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.1587).abs() < 1e-3);
    }
}
