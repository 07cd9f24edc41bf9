//! Directories made from stream names, confined to their root.
//!
//! A [`media::StreamKey`] only holds plain segments, so `root.join(key.relative_dir(..))` stays
//! under `root` lexically. This is the second line: before any file is created, the directory
//! is made and resolved on disk (symlinks followed) and must still be under the resolved root,
//! so a symlink planted inside the save tree cannot redirect a recording elsewhere either.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Creates `root/rel` (and `root`) and returns it resolved, or an error when `rel` is not a
/// plain relative path or the resolved directory is not under the resolved root.
pub fn confined_dir(root: &Path, rel: &Path) -> io::Result<PathBuf> {
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(escape(root, rel));
    }
    std::fs::create_dir_all(root)?;
    let root = std::fs::canonicalize(root)?;
    // One segment at a time: each existing one is resolved and checked before anything is
    // created below it, so nothing is ever made outside the root, even through a symlink.
    let mut dir = root.clone();
    for segment in rel.components() {
        let next = dir.join(segment);
        match std::fs::create_dir(&next) {
            Ok(()) => dir = next,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let resolved = std::fs::canonicalize(&next)?;
                if !resolved.starts_with(&root) || !resolved.is_dir() {
                    return Err(escape(&root, rel));
                }
                dir = resolved;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

fn escape(root: &Path, rel: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{:?} would leave the save directory {}",
            rel.display().to_string(),
            root.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_under_the_root() {
        let tmp = std::env::temp_dir().join(format!("ferrostream-paths-{}", std::process::id()));
        let root = tmp.join("root");
        let dir = confined_dir(&root, Path::new("live/a/b")).expect("plain path");
        assert!(dir.ends_with("live/a/b") && dir.is_dir());
        for bad in ["../x", "/etc", "a/../../x", "./a"] {
            assert!(confined_dir(&root, Path::new(bad)).is_err(), "{bad}");
        }
        // A symlink inside the tree that points out of it is not followed out.
        let outside = tmp.join("outside");
        std::fs::create_dir_all(&outside).expect("dir");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, root.join("live/link")).expect("symlink");
            let err = confined_dir(&root, Path::new("live/link/s")).expect_err("escapes");
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
            assert!(!outside.join("s").exists(), "created outside the root");
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
