//! Noticing garbage while it streams: runs of special tokens (`<unused50>`), a short
//! n-gram repeating without end, or thinking that never ends. Fed one streamed piece at
//! a time; says so within a bounded number of pieces after the onset.

use serde::{Deserialize, Serialize};

/// Why a stream was stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Degeneracy {
    pub kind: String,
    pub evidence: String,
    /// Pieces (≈ tokens) received when it was noticed.
    pub at_piece: usize,
}

/// Pieces of the same special token in a row that count as a broken backend.
const SPECIAL_RUN: usize = 8;
/// The repeating unit may be up to this many pieces, and must repeat this many times.
const MAX_UNIT: usize = 8;
const REPEATS: usize = 8;
/// A longer loop is found in the text itself (a unit of up to this many bytes, split
/// into pieces differently each time round, as `<|im_end|>\n<|im_start|>\n` is, or a
/// whole echoed prompt)...
const MAX_TEXT_UNIT: usize = 4096;
/// ...when it has repeated until its repeats cover this many bytes ([`REPEATS`] times
/// for a short unit, fewer for a long one, never fewer than [`MIN_TEXT_REPEATS`])...
const LOOP_BYTES: usize = 512;
const MIN_TEXT_REPEATS: usize = 3;
/// ...and its repeats span at least this many pieces (so a long rule of `=====` in a
/// code block, a few pieces of text, is not mistaken for a loop).
const MIN_LOOP_PIECES: usize = 3 * MAX_UNIT;
/// Evidence quotes at most this many characters of a long unit.
const EVIDENCE_CHARS: usize = 160;

/// How many times a text unit of `unit` bytes must repeat to count as a loop.
fn text_repeats(unit: usize) -> usize {
    LOOP_BYTES.div_ceil(unit).clamp(MIN_TEXT_REPEATS, REPEATS)
}

/// Streaming detector.
#[derive(Debug, Default)]
pub struct Detector {
    pieces: Vec<String>,
    /// The answer so far, and where each piece starts in it.
    text: String,
    starts: Vec<usize>,
    special_run: usize,
    last_special: Option<String>,
    thinking_pieces: usize,
    /// Thinking longer than this many pieces with no answer counts as stuck (0 = off).
    pub thinking_limit: usize,
}

fn is_special(piece: &str) -> Option<&str> {
    let p = piece.trim();
    (p.starts_with('<')
        && p.ends_with('>')
        && p.len() > 2
        && !p.contains(' ')
        && (p.contains("unused") || p.starts_with("<|") || p.starts_with("<0x")))
    .then_some(p)
}

impl Detector {
    pub fn new(thinking_limit: usize) -> Self {
        Detector {
            thinking_limit,
            ..Detector::default()
        }
    }

    /// Feeds one piece of answer text; returns a verdict once the stream is degenerate.
    pub fn push(&mut self, piece: &str) -> Option<Degeneracy> {
        self.pieces.push(piece.to_string());
        self.starts.push(self.text.len());
        self.text.push_str(piece);
        let n = self.pieces.len();
        // A piece may hold several specials at once ("<unused50><unused50>").
        let specials: Vec<&str> = piece.split_inclusive('>').filter_map(is_special).collect();
        if !specials.is_empty() && specials.len() * 4 >= piece.split_inclusive('>').count() {
            for s in specials {
                if self.last_special.as_deref() == Some(s) {
                    self.special_run += 1;
                } else {
                    self.special_run = 1;
                    self.last_special = Some(s.to_string());
                }
            }
            if self.special_run >= SPECIAL_RUN {
                return Some(Degeneracy {
                    kind: "special_tokens".into(),
                    evidence: format!(
                        "{} × {}",
                        self.special_run,
                        self.last_special.clone().unwrap_or_default()
                    ),
                    at_piece: n,
                });
            }
        } else if !piece.trim().is_empty() {
            self.special_run = 0;
            self.last_special = None;
        }
        for unit in 1..=MAX_UNIT {
            let span = unit * REPEATS;
            if n < span {
                break;
            }
            let tail = &self.pieces[n - span..];
            let first = &tail[..unit];
            if first.iter().all(|p| p.trim().is_empty()) {
                continue;
            }
            if tail.chunks(unit).all(|c| c == first) {
                return Some(Degeneracy {
                    kind: "repetition".into(),
                    evidence: format!("{:?} repeated {REPEATS} times", first.concat()),
                    at_piece: n,
                });
            }
        }
        self.text_loop().map(|(unit, times)| {
            let quoted: String = unit.chars().take(EVIDENCE_CHARS).collect();
            let more = if quoted.len() < unit.len() {
                format!(
                    " (the first {EVIDENCE_CHARS} of {} characters)",
                    unit.chars().count()
                )
            } else {
                String::new()
            };
            Degeneracy {
                kind: "repetition".into(),
                evidence: format!("{quoted:?}{more} repeated {times} times"),
                at_piece: n,
            }
        })
    }

    /// The unit the answer's text ends by repeating and how many times, when it has
    /// repeated [`text_repeats`] times over at least [`MIN_LOOP_PIECES`] pieces.
    fn text_loop(&self) -> Option<(String, usize)> {
        let b = self.text.as_bytes();
        let len = b.len();
        for unit in 1..=MAX_TEXT_UNIT {
            let times = text_repeats(unit);
            let span = unit * times;
            if span > len {
                continue;
            }
            let tail = &b[len - span..];
            // From the newest byte back: ordinary text differs at once.
            if !(0..span - unit).rev().all(|i| tail[i] == tail[i + unit]) {
                continue;
            }
            let pieces = self.starts.iter().filter(|&&s| s >= len - span).count();
            let text = String::from_utf8_lossy(&tail[span - unit..]).into_owned();
            if pieces >= MIN_LOOP_PIECES && !text.trim().is_empty() {
                return Some((text, times));
            }
        }
        None
    }

    /// Feeds one piece of thinking text.
    pub fn push_thinking(&mut self, _piece: &str) -> Option<Degeneracy> {
        self.thinking_pieces += 1;
        (self.thinking_limit > 0 && self.thinking_pieces >= self.thinking_limit).then(|| {
            Degeneracy {
                kind: "endless_thinking".into(),
                evidence: format!("{} pieces of thinking and no answer", self.thinking_pieces),
                at_piece: self.thinking_pieces,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_of_chat_template_text_split_into_many_pieces_is_caught() {
        // Seen with the sample base model on "ha ha ha …": 256 tokens of
        // "<|im_end|>\n<|im_start|>\n", a unit longer than MAX_UNIT pieces.
        let mut d = Detector::new(0);
        let unit = [
            "<", "|", "im", "_", "end", "|>", "\n", "<", "|", "im", "_", "start", "|>", "\n",
        ];
        let mut at = None;
        for i in 0..400 {
            if let Some(v) = d.push(unit[i % unit.len()]) {
                at = Some((i, v));
                break;
            }
        }
        let (i, v) = at.expect("the loop is noticed");
        assert!(i < unit.len() * (REPEATS + 2), "noticed late, at piece {i}");
        assert_eq!(v.kind, "repetition");
        assert!(v.evidence.contains("im_start"), "{}", v.evidence);
    }

    /// The recorded stream's content pieces, in order.
    fn recorded(sse: &str) -> Vec<String> {
        sse.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(String::from)
            })
            .collect()
    }

    #[test]
    fn the_recorded_echo_of_the_prompt_is_caught_within_its_budget() {
        // The sample model asked in ChatML it was never trained on: the prompt,
        // `<|im_end|>\n<|im_start|>admin\n`, again and again (~185 bytes a round).
        let pieces = recorded(include_str!(
            "../../tests/fixtures/streams/echo-loop-chatml.sse"
        ));
        assert!(pieces.len() > 250, "{} pieces recorded", pieces.len());
        let mut d = Detector::new(0);
        let (at, v) = pieces
            .iter()
            .enumerate()
            .find_map(|(i, p)| d.push(p).map(|v| (i, v)))
            .expect("the echo loop is noticed before the answer's 256 tokens run out");
        assert_eq!(v.kind, "repetition");
        assert!(
            v.evidence.contains("A shop has 48 apples"),
            "{}",
            v.evidence
        );
        assert!(v.evidence.contains("repeated 3 times"), "{}", v.evidence);
        assert!(at < 200, "noticed at piece {at}");
    }

    #[test]
    fn a_paragraph_said_twice_is_not_a_loop() {
        // An answer may quote its question once, or restate a long sentence.
        let mut d = Detector::new(0);
        let para = "Water boils at one hundred degrees Celsius at sea level, and at a lower \
                    temperature on a mountain, because the air pressure there is lower. ";
        let text = format!("{para}{para}In short: it depends on the pressure.");
        assert!(text.split_inclusive(' ').find_map(|w| d.push(w)).is_none());
    }

    #[test]
    fn a_long_rule_in_few_pieces_is_not_a_loop() {
        let mut d = Detector::new(0);
        for p in [
            "Heading\n",
            "================",
            "================",
            "================",
            "====\n",
            "Body text follows.",
        ] {
            assert_eq!(d.push(p), None, "{p}");
        }
    }

    #[test]
    fn unused_tokens_are_caught_within_the_bound() {
        let mut d = Detector::new(0);
        let mut at = None;
        for i in 0..1000 {
            if let Some(v) = d.push("<unused50>") {
                at = Some((i, v));
                break;
            }
        }
        let (i, v) = at.unwrap();
        assert!(i < 64, "caught after {i} pieces");
        assert_eq!(v.kind, "special_tokens");
        let mut d = Detector::new(0);
        assert!((0..20)
            .filter_map(|_| d.push("<unused50><unused50>"))
            .next()
            .is_some());
    }

    #[test]
    fn loops_are_caught_and_ordinary_text_is_not() {
        let mut d = Detector::new(0);
        let looped = (0..200)
            .map(|i| [" the", " cat", " sat", "."][i % 4])
            .find_map(|p| d.push(p));
        assert_eq!(looped.unwrap().kind, "repetition");
        let mut d = Detector::new(0);
        let prose = "The quick brown fox jumps over the lazy dog while the cat watches from the warm windowsill and the rain begins to fall on the quiet street outside";
        assert!(prose.split(' ').find_map(|w| d.push(w)).is_none());
        // A list of numbers is not a loop.
        let mut d = Detector::new(0);
        assert!((0..100).find_map(|i| d.push(&format!(" {i},"))).is_none());
        // Repeated blank lines are not evidence.
        let mut d = Detector::new(0);
        assert!((0..100).find_map(|_| d.push("\n")).is_none());
    }

    #[test]
    fn endless_thinking() {
        let mut d = Detector::new(50);
        assert!((0..49).all(|_| d.push_thinking("hmm").is_none()));
        assert_eq!(d.push_thinking("hmm").unwrap().kind, "endless_thinking");
        assert!(Detector::new(0).push_thinking("x").is_none());
    }
}
