//! The data directory holds the signing key, client secrets and approval tokens in flight
//! ([`crate::data_dir`]): it must be its owner's alone. `check` only looks; `serve` and `dev` create
//! it 0700, and tighten one left open.

use std::path::Path;

use super::Finding;

const DATA_DIR: &str = "data directory";

pub fn check(dir: &Path) -> Finding {
    let shown = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let shown = shown.display();
    match std::fs::metadata(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Finding::warn(
            DATA_DIR,
            format!("{shown} does not exist yet"),
            "`bankguard serve` and `bankguard dev` create it (mode 0700) on first start",
        ),
        Err(error) => Finding::fail(DATA_DIR, format!("{shown} cannot be read: {error}"), "check data_dir"),
        Ok(metadata) if !metadata.is_dir() => {
            Finding::fail(DATA_DIR, format!("{shown} is not a directory"), "set data_dir to a directory")
        }
        Ok(metadata) => permissions(&shown.to_string(), &metadata),
    }
}

#[cfg(unix)]
fn permissions(shown: &str, metadata: &std::fs::Metadata) -> Finding {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Finding::pass(DATA_DIR, format!("{shown} is the owner's alone ({mode:04o})"));
    }
    Finding::fail(
        DATA_DIR,
        format!("{shown} is open to other users ({mode:04o}); it holds keys and secrets"),
        format!("chmod 700 {shown} (bankguard also tightens it, and its files, when it starts)"),
    )
}

#[cfg(not(unix))]
fn permissions(shown: &str, _metadata: &std::fs::Metadata) -> Finding {
    Finding::pass(DATA_DIR, format!("{shown} exists"))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::check::Verdict;

    #[test]
    fn a_directory_open_to_others_fails_and_says_how_to_close_it() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(".bankguard");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let finding = check(&dir);
        assert_eq!(
            finding.verdict,
            Verdict::Fail {
                fix: format!("chmod 700 {} (bankguard also tightens it, and its files, when it starts)", dir.display())
            }
        );

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(check(&dir).to_string(), format!("✓ data directory: {} is the owner's alone (0700)", dir.display()));
        assert!(matches!(check(&root.path().join("missing")).verdict, Verdict::Warn { .. }));
    }
}
