//! The pages Kindling writes for the owner to read or pass on (a run, a showdown): where
//! they go — the folder the owner gave (Downloads, in the app), else `pages/` in
//! Kindling's home — and how: whole or not at all (a temp file, then a rename), so a page
//! being opened is never half written.

use std::path::{Path, PathBuf};

use crate::{Core, Error, Result};

impl Core {
    /// Writes `text` as `name` into `dir` when it is a folder, else into the home's
    /// `pages/`; the path written.
    pub fn save_page(&self, dir: Option<&Path>, name: &str, text: &str) -> Result<PathBuf> {
        let dir = dir
            .filter(|d| d.is_dir())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.paths().home().join("pages"));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(path)
    }
}
