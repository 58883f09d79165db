//! The quality suite: tests as data (`models/suites/core.toml`, embedded in the binary),
//! checked on load, and the prompts generated from a seed (needle-in-a-haystack).

use serde::{Deserialize, Serialize};

use super::graders::Grader;

/// The suite shipped with this build.
pub const CORE_SUITE: &str = include_str!("../../../../models/suites/core.toml");

/// The categories, in report order. `performance` is the speed benchmark.
pub const CATEGORIES: &[&str] = &[
    "reasoning",
    "coding",
    "tool_calling",
    "creative",
    "context",
    "agentic",
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SuiteInfo {
    pub id: String,
    pub version: u32,
    #[serde(default)]
    pub system: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Needle {
    pub sentences: usize,
    /// Where the code word sits, 0.0 (start) to 1.0 (end).
    pub depth: f64,
    pub seed: u64,
    pub code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Agent {
    pub max_steps: u32,
}

/// One test.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestCase {
    pub id: String,
    pub category: String,
    #[serde(default)]
    pub quick: bool,
    pub prompt: Option<String>,
    /// User turns of a multi-turn conversation (the model answers each).
    #[serde(default)]
    pub turns: Vec<String>,
    pub needle: Option<Needle>,
    #[serde(default)]
    pub tools: Vec<String>,
    pub agent: Option<Agent>,
    pub max_tokens: u32,
    pub grader: Grader,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Suite {
    pub suite: SuiteInfo,
    #[serde(rename = "test")]
    pub tests: Vec<TestCase>,
}

impl Suite {
    /// Parses and checks a suite: unique ids, known categories, exactly one way to ask.
    pub fn parse(text: &str) -> Result<Suite, String> {
        let suite: Suite = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut seen = std::collections::HashSet::new();
        for t in &suite.tests {
            if !seen.insert(&t.id) {
                return Err(format!("test id {} appears twice", t.id));
            }
            if !CATEGORIES.contains(&t.category.as_str()) {
                return Err(format!("test {} has unknown category {}", t.id, t.category));
            }
            let ways = usize::from(t.prompt.is_some())
                + usize::from(!t.turns.is_empty())
                + usize::from(t.needle.is_some());
            if ways != 1 {
                return Err(format!(
                    "test {} needs exactly one of prompt, turns, needle",
                    t.id
                ));
            }
            for tool in &t.tools {
                if super::tools::spec(tool).is_none() {
                    return Err(format!("test {} uses unknown tool {tool}", t.id));
                }
            }
        }
        Ok(suite)
    }

    /// The suite built into Kindling.
    pub fn core() -> Suite {
        Suite::parse(CORE_SUITE).expect("the embedded suite is checked by a unit test")
    }

    /// The tests of a run: all, or the quick subset.
    pub fn select(&self, quick: bool) -> Vec<&TestCase> {
        self.tests.iter().filter(|t| !quick || t.quick).collect()
    }
}

const FILLER: &[&str] = &[
    "The harbour was quiet before the fishing boats returned.",
    "A gull circled twice over the old stone pier.",
    "Someone had painted the lighthouse door a pale green.",
    "The bakery on the corner opened at six every morning.",
    "Children chalked numbers on the pavement near the school.",
    "A tram rattled past the square with its bell ringing.",
    "The library kept maps of the coast from a century ago.",
    "Rain was forecast for the evening but never came.",
    "An old man sold chestnuts from a cart by the station.",
    "The river turned brown after the storms in the hills.",
    "Lanterns were hung along the street for the festival.",
    "The market closed early because of the wind.",
];

/// The needle prompt: `sentences` filler sentences chosen from `seed`, with the code word
/// at `depth`, then the question.
pub fn needle_prompt(n: &Needle) -> String {
    let mut x = n
        .seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let at = ((n.sentences as f64) * n.depth.clamp(0.0, 1.0)).round() as usize;
    let mut text = String::from("Read the following notes carefully.\n\n");
    for i in 0..=n.sentences {
        if i == at {
            text.push_str(&format!("The secret code word is {}. ", n.code));
        }
        if i == n.sentences {
            break;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text.push_str(FILLER[(x % FILLER.len() as u64) as usize]);
        text.push(' ');
    }
    text.push_str("\n\nWhat is the secret code word? Reply with the code word only.");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_suite_is_valid_and_big_enough() {
        let s = Suite::parse(CORE_SUITE).unwrap();
        for c in CATEGORIES {
            let n = s.tests.iter().filter(|t| t.category == *c).count();
            assert!(n >= 6, "{c} has {n} tests");
            assert!(
                s.tests.iter().any(|t| t.category == *c && t.quick),
                "{c} has no quick test"
            );
        }
        let quick = s.select(true).len();
        assert!((8..=12).contains(&quick), "{quick} quick tests");
    }

    #[test]
    fn bad_suites_are_refused_with_the_reason() {
        let base = "[suite]\nid='x'\nversion=1\n";
        let t = |body: &str| Suite::parse(&format!("{base}[[test]]\n{body}")).unwrap_err();
        assert!(t(
            "id='a'\ncategory='poetry'\nprompt='p'\nmax_tokens=1\ngrader={kind='no_tool_call'}"
        )
        .contains("unknown category"));
        assert!(
            t("id='a'\ncategory='creative'\nmax_tokens=1\ngrader={kind='no_tool_call'}")
                .contains("exactly one")
        );
        assert!(t("id='a'\ncategory='creative'\nprompt='p'\ntools=['rm_rf']\nmax_tokens=1\ngrader={kind='no_tool_call'}").contains("unknown tool"));
        assert!(t(
            "id='a'\ncategory='creative'\nprompt='p'\nmax_tokens=1\ngrader={kind='telepathy'}"
        )
        .contains("telepathy"));
    }

    #[test]
    fn needles_are_deterministic_and_placed() {
        let n = Needle {
            sentences: 200,
            depth: 0.8,
            seed: 37,
            code: "JUNIPER-8032".into(),
        };
        let a = needle_prompt(&n);
        assert_eq!(a, needle_prompt(&n));
        let pos = a.find("JUNIPER-8032").unwrap() as f64 / a.len() as f64;
        assert!((0.7..0.9).contains(&pos), "{pos}");
        assert_eq!(a.matches("JUNIPER-8032").count(), 1);
        let end = Needle { depth: 1.0, ..n };
        assert!(needle_prompt(&end).contains("JUNIPER-8032"));
    }
}
