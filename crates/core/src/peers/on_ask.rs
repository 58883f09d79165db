//! A lending Mac starting a model for a paired Mac that asks: route first, even when the
//! Mac that has the model serves nothing yet.
//!
//! The helper never changes what its owner serves: it starts a model only while its model
//! server serves nothing, only one it has on its disk that fits where it runs fast, and
//! only when its owner lends that server. A model started so is stopped again once no
//! paired Mac has used it for a while ([`STOP_UNUSED_AFTER`]), or when lending stops.
//!
//! Who starts it differs: `kindling share` starts a server of its own; the app starts its
//! menu-bar server. Each implements [`StartsModels`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

/// How long a model started for a paired Mac keeps serving after the last one stopped
/// using it.
pub const STOP_UNUSED_AFTER: Duration = Duration::from_secs(600);

/// A model this Mac could start if asked.
#[derive(Debug, Clone, PartialEq)]
pub struct CanServe {
    /// Its id, as apps (and paired Macs) name it.
    pub id: String,
    pub path: PathBuf,
}

/// What starts and stops a model for a paired Mac on this one.
pub trait StartsModels: Send + Sync {
    /// The models this Mac has on its disk that fit where it runs them fast.
    fn can_serve(&self) -> BoxFuture<'_, Vec<CanServe>>;
    /// Starts `model` on the model server this Mac lends, for `asker` (a paired Mac's
    /// name); resolves once it answers. The error is a sentence for the asking Mac's
    /// owner ("it could not load it: …").
    fn start<'a>(&'a self, model: &'a Path, asker: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// Stops `model`, started by [`StartsModels::start`], because of `why` ("no Mac has
    /// used it for 10 min"); a model its owner has since chosen to serve is left alone.
    fn stop<'a>(&'a self, model: &'a Path, why: &'a str) -> BoxFuture<'a, ()>;
}

/// A helper's [`StartsModels`], as its options carry it.
#[derive(Clone)]
pub struct OnAsk(pub Arc<dyn StartsModels>);

impl std::fmt::Debug for OnAsk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnAsk")
    }
}

/// Which of `can` the id `asked` names (ids are matched whatever their case, as the
/// route does).
pub fn find<'a>(can: &'a [CanServe], asked: &str) -> Option<&'a CanServe> {
    can.iter().find(|c| c.id.eq_ignore_ascii_case(asked))
}

/// Why this Mac will not start `asked` while its server answers for `served` (empty:
/// it serves nothing), or `None` when it may (or serves it already).
pub fn busy_with(served: &[String], asked: &str) -> Option<String> {
    if served.is_empty() || served.iter().any(|s| s.eq_ignore_ascii_case(asked)) {
        return None;
    }
    Some(format!(
        "it serves {} now, and Kindling never changes what a Mac's owner serves",
        served.join(", ")
    ))
}

/// "no Mac has used it for 10 min", for the owner.
pub fn unused_for(after: Duration) -> String {
    let secs = after.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("no Mac has used it for {} min", secs / 60)
    } else {
        format!("no Mac has used it for {secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_serving_another_model_is_never_changed_and_one_serving_it_already_is_fine() {
        assert_eq!(busy_with(&[], "gemma"), None);
        assert_eq!(busy_with(&["Gemma".into()], "gemma"), None);
        let why = busy_with(&["qwen3-8b".into()], "gemma").unwrap();
        assert!(why.contains("serves qwen3-8b now"), "{why}");
    }

    #[test]
    fn the_model_asked_for_is_found_whatever_its_case() {
        let can = [CanServe {
            id: "gemma-3-270m-q4_k_m".into(),
            path: "/m/gemma-3-270m-q4_k_m.gguf".into(),
        }];
        assert_eq!(find(&can, "Gemma-3-270M-Q4_K_M"), can.first());
        assert_eq!(find(&can, "qwen"), None);
    }

    #[test]
    fn idle_time_is_said_in_minutes_when_whole() {
        assert_eq!(
            unused_for(Duration::from_secs(600)),
            "no Mac has used it for 10 min"
        );
        assert_eq!(
            unused_for(Duration::from_secs(3)),
            "no Mac has used it for 3 s"
        );
    }
}
