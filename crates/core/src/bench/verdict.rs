//! What a speed means to a person: one source for the CLI's and the app's sentences.

/// Rough words per token for English text.
pub const WORDS_PER_TOKEN: f64 = 0.75;

/// "about 22 words per second — fast enough to chat comfortably"
pub fn verdict(tokens_per_second: f64) -> String {
    let words = tokens_per_second * WORDS_PER_TOKEN;
    let feel = if tokens_per_second >= 20.0 {
        "fast enough to chat comfortably"
    } else if tokens_per_second >= 8.0 {
        "about reading speed: fine for chat"
    } else if tokens_per_second >= 2.0 {
        "slower than reading: better for tasks you can leave running"
    } else {
        "slow: use it for overnight work, or try a smaller model"
    };
    format!("about {words:.0} words per second — {feel}")
}

/// The result card's sentence: "gemma-3-270m Q4_K_M answers at about 22 words per second
/// here — fast enough to chat comfortably".
pub fn headline(model: &str, quant: Option<&str>, tokens_per_second: f64) -> String {
    let name = match quant {
        Some(q) if !model.contains(q) => format!("{model} {q}"),
        _ => model.to_string(),
    };
    let v = verdict(tokens_per_second);
    let (speed, feel) = v.split_once(" — ").unwrap_or((&v, ""));
    format!("{name} answers at {speed} here — {feel}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_map_to_plain_words() {
        assert_eq!(
            verdict(30.0),
            "about 22 words per second — fast enough to chat comfortably"
        );
        assert!(verdict(10.0).contains("reading speed"));
        assert!(verdict(3.0).contains("leave running"));
        assert!(verdict(0.5).contains("smaller model"));
    }

    #[test]
    fn headline_names_the_model_once() {
        assert_eq!(
            headline("Gemma 3 270M", Some("Q4_K_M"), 30.0),
            "Gemma 3 270M Q4_K_M answers at about 22 words per second here — fast enough to chat comfortably"
        );
        assert!(headline("gemma-3-270m-Q4_K_M", Some("Q4_K_M"), 30.0)
            .starts_with("gemma-3-270m-Q4_K_M answers"));
    }
}
