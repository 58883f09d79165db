//! The model `kindling share` starts for a paired Mac that asks (route first: the Mac
//! that has the model serves it whole), on the port it lends, and stops again.

use std::path::Path;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use kindling_core::peers::on_ask::{CanServe, StartsModels};
use kindling_core::server::Server;
use kindling_core::{Cancel, Core};

pub struct ShareStarts {
    pub core: Arc<Core>,
    /// The lent model server's port.
    pub port: u16,
    pub server: tokio::sync::Mutex<Option<Server>>,
}

fn name(model: &Path) -> String {
    kindling_core::front::model_id(model)
}

impl StartsModels for ShareStarts {
    fn can_serve(&self) -> BoxFuture<'_, Vec<CanServe>> {
        Box::pin(self.core.models_that_fit_here())
    }

    fn start<'a>(&'a self, model: &'a Path, asker: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut held = self.server.lock().await;
            println!(
                "{asker} asked for {}: starting it on port {}.",
                name(model),
                self.port
            );
            let (server, _) = self
                .core
                .start_serving(model, Some(self.port), &Cancel::new())
                .await
                .map_err(|e| format!("it could not start {}: {e}", name(model)))?;
            println!("Serving {} for {asker}.", name(model));
            *held = Some(server);
            Ok(())
        })
    }

    fn stop<'a>(&'a self, model: &'a Path, why: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(server) = self.server.lock().await.take() {
                server.stop().await;
                println!("Stopped {}, started for another Mac: {why}.", name(model));
            }
        })
    }
}
