//! Context sizing: the server's context for the tests still to run, or what fits.

use super::*;

impl Core {
    /// Sizes the server's context for the tests still to run: the context the longest
    /// needs when the fit estimator says this machine has room for it, else what fits.
    /// Returns the server (restarted when resized), each test's need, and what a test
    /// that needs more is told.
    pub(super) async fn size_context(
        &self,
        run_id: i64,
        model: &std::path::Path,
        mut server: Server,
        system: Option<&str>,
        pending: &[&TestCase],
        cancel: &CancellationToken,
    ) -> Result<(Server, HashMap<String, u64>, String)> {
        let http = crate::server::http_client();
        let mut needs = HashMap::new();
        for t in pending {
            let need = guarded(
                &server,
                cancel,
                context_needed(&http, &server.base_url(), system, t),
            )
            .await?;
            needs.insert(t.id.clone(), need);
        }
        let have = u64::from(server.config().ctx_size);
        let most = needs.values().copied().max().unwrap_or(0);
        let limit = |fits: u64, by_model: bool| {
            let n = crate::units::format_tokens(fits);
            if by_model {
                format!("this model takes at most {n}")
            } else {
                format!("this Mac fits {n}")
            }
        };
        if most <= have {
            return Ok((server, needs, limit(have, false)));
        }
        let (fits, by_model) = self.context_fit(model, most).await?;
        // Room for every test when it fits; else as much as fits, for the ones that do.
        let target = if fits >= most {
            most.div_ceil(1024) * 1024
        } else {
            fits / 1024 * 1024
        };
        if target > have {
            server.stop().await;
            server = self
                .start_for_quality(model, Some(target as u32), cancel)
                .await?;
            self.db()
                .set_run_server_args(run_id, &server.config().to_args())
                .await?;
        }
        let fits = fits.max(have);
        let words = limit(fits, by_model);
        Ok((server, needs, words))
    }
}
