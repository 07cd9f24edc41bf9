//! Build facts for the `version` call (ZLMediaKit's `branchName`, `commitHash`, `buildTime`):
//! read from git when the source is a checkout, `unknown` otherwise (a crate tarball). The
//! commit time stands for the build time, so a build of one commit is the same every time.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    let unknown = || "unknown".to_owned();
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(unknown);
    let branch = git(&["rev-parse", "--abbrev-ref", "HEAD"]).unwrap_or_else(unknown);
    let time = git(&["log", "-1", "--format=%cI"]).unwrap_or_else(unknown);
    println!("cargo:rustc-env=FERROSTREAM_COMMIT={commit}");
    println!("cargo:rustc-env=FERROSTREAM_BRANCH={branch}");
    println!("cargo:rustc-env=FERROSTREAM_COMMIT_TIME={time}");
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(refs) = git(&["rev-parse", "--git-path", "refs/heads"]) {
        println!("cargo:rerun-if-changed={refs}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
