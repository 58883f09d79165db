//! The model the app starts for a paired Mac that asks (route first: the Mac that has
//! the model serves it whole): its menu-bar server, only while that serves nothing; it
//! stops once no Mac has used it for a while, unless its owner has since chosen a model.

use std::path::Path;

use futures_util::future::BoxFuture;
use kindling_core::front::model_id;
use kindling_core::peers::on_ask::{CanServe, StartsModels};
use tauri::{AppHandle, Manager};

use crate::server_control::{self, Choice, Which};
use crate::state::AppState;

pub struct AppStarts {
    pub app: AppHandle,
}

impl StartsModels for AppStarts {
    fn can_serve(&self) -> BoxFuture<'_, Vec<CanServe>> {
        Box::pin(async move {
            let core = self.app.state::<AppState>().core.clone();
            core.models_that_fit_here().await
        })
    }

    fn start<'a>(&'a self, model: &'a Path, asker: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let state = self.app.state::<AppState>();
            // The owner's own server is never replaced: not one running, not one starting.
            let busy = state
                .server
                .running
                .try_lock()
                .map_or(true, |r| r.is_some())
                || state.server.starting.lock().expect("lock").is_some();
            if busy {
                return Err(
                    "its owner is serving a model now, and Kindling never changes what a Mac's owner serves"
                        .into(),
                );
            }
            let choice = Choice {
                asked_by: Some(asker.to_string()),
                ..Choice::alone(model.to_path_buf())
            };
            server_control::start_in(&self.app, Which::Served, choice)
                .await
                .map_err(|e| format!("it could not start {}: {}", model_id(model), e.message))?;
            crate::tray::refresh(&self.app);
            crate::tray::notify(
                &self.app,
                &format!("Serving {} for {asker}", model_id(model)),
                &format!(
                    "{asker} asked this Mac to serve {}, which it has and which fits here. It stops once no Mac has used it for 10 minutes, or when this Mac stops lending.",
                    model_id(model)
                ),
            );
            Ok(())
        })
    }

    fn stop<'a>(&'a self, model: &'a Path, why: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let state = self.app.state::<AppState>();
            let asker = state
                .server
                .running
                .lock()
                .await
                .as_ref()
                .filter(|r| r.choice.model == model)
                .and_then(|r| r.choice.asked_by.clone());
            // A model the owner has since chosen is theirs: it keeps serving.
            let Some(asker) = asker else { return };
            server_control::stop_in(&self.app, Which::Served).await;
            crate::tray::refresh(&self.app);
            crate::tray::notify(
                &self.app,
                &format!("Stopped {}", model_id(model)),
                &format!("It was started for {asker}, and {why}."),
            );
        })
    }
}
