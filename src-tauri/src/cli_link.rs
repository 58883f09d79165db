//! "Install the kindling command": the app carries the `kindling` command beside itself
//! (`Contents/MacOS/kindling`, `/usr/bin/kindling`); this links it into a folder on the
//! owner's PATH, as other local-AI apps do for theirs. `/usr/local/bin` when the owner may
//! write there, else `~/.local/bin` (made if missing, and the owner is told how to put it
//! on the PATH). A `kindling` there that is not a link is someone else's program and is
//! left alone.

use std::path::{Path, PathBuf};

/// Where the command was linked, in the owner's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    pub link: PathBuf,
    pub on_path: bool,
}

impl Linked {
    pub fn sentence(&self) -> String {
        if self.on_path {
            format!(
                "The kindling command is ready ({}). Open a new Terminal window and try: kindling detect",
                self.link.display()
            )
        } else {
            let dir = self.link.parent().unwrap_or(Path::new("~")).display();
            format!(
                "The kindling command is linked at {}, a folder your PATH does not include yet: add the line export PATH=\"{dir}:$PATH\" to ~/.zshrc, then open a new Terminal window and try: kindling detect",
                self.link.display()
            )
        }
    }
}

/// The first folder of `candidates` the owner may write to. Pure.
pub fn choose(candidates: &[(PathBuf, bool)]) -> Option<PathBuf> {
    candidates
        .iter()
        .find(|(_, writable)| *writable)
        .map(|(dir, _)| dir.clone())
}

fn writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".kindling-probe-{}", std::process::id()));
    let ok = dir.is_dir() && std::fs::File::create(&probe).is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// Links `command` (the app's own `kindling`) into `/usr/local/bin` or `home`'s
/// `.local/bin`, replacing an older link of ours; `path_var` says which folders are on
/// the PATH.
pub fn install(command: &Path, home: &Path, path_var: &str) -> Result<Linked, String> {
    if !command.is_file() {
        return Err(format!(
            "This Kindling has no kindling command beside it ({} is missing): a build from source keeps it in target/release/kindling.",
            command.display()
        ));
    }
    let local = home.join(".local/bin");
    let system = PathBuf::from("/usr/local/bin");
    let dir = match choose(&[(system.clone(), writable(&system))]) {
        Some(d) => d,
        None => {
            std::fs::create_dir_all(&local)
                .map_err(|e| format!("Kindling could not make {}: {e}", local.display()))?;
            local
        }
    };
    link_into(command, &dir, path_var)
}

/// Links `command` as `dir/kindling`.
pub fn link_into(command: &Path, dir: &Path, path_var: &str) -> Result<Linked, String> {
    let link = dir.join("kindling");
    match std::fs::symlink_metadata(&link) {
        Ok(m) if m.file_type().is_symlink() => std::fs::remove_file(&link)
            .map_err(|e| format!("Kindling could not replace {}: {e}", link.display()))?,
        Ok(_) => {
            return Err(format!(
                "{} is another program, not a link to Kindling's command, so Kindling left it alone. Remove it and try again, or run {} directly.",
                link.display(),
                command.display()
            ))
        }
        Err(_) => {}
    }
    std::os::unix::fs::symlink(command, &link)
        .map_err(|e| format!("Kindling could not link {}: {e}", link.display()))?;
    Ok(Linked {
        on_path: std::env::split_paths(path_var).any(|p| p == dir),
        link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_writable_folder_is_chosen() {
        let a = PathBuf::from("/usr/local/bin");
        let b = PathBuf::from("/home/me/.local/bin");
        assert_eq!(choose(&[(a.clone(), false), (b.clone(), true)]), Some(b));
        assert_eq!(choose(&[(a.clone(), true)]), Some(a));
        assert_eq!(choose(&[]), None);
    }

    #[test]
    fn the_command_is_linked_and_relinked_but_never_over_another_program() {
        let t = tempfile::tempdir().unwrap();
        let app = t.path().join("Kindling.app/Contents/MacOS");
        std::fs::create_dir_all(&app).unwrap();
        let command = app.join("kindling");
        std::fs::write(&command, b"#!/bin/sh\necho kindling\n").unwrap();
        let bin = t.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();

        let on = link_into(&command, &bin, bin.to_str().unwrap()).unwrap();
        assert!(on.on_path);
        assert_eq!(std::fs::read_link(&on.link).unwrap(), command);
        assert!(
            on.sentence().contains("kindling detect"),
            "{}",
            on.sentence()
        );
        // Again (an updated app): the old link is replaced.
        let again = link_into(&command, &bin, "/usr/bin").unwrap();
        assert!(!again.on_path);
        assert!(
            again.sentence().contains("export PATH="),
            "{}",
            again.sentence()
        );

        let other = t.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("kindling"), b"someone else's").unwrap();
        let refused = link_into(&command, &other, "").unwrap_err();
        assert!(refused.contains("left it alone"), "{refused}");
        assert_eq!(
            std::fs::read(other.join("kindling")).unwrap(),
            b"someone else's"
        );
        let missing = install(&app.join("nope"), t.path(), "").unwrap_err();
        assert!(missing.contains("no kindling command"), "{missing}");
    }
}
