//! The data directory is its owner's alone: it holds the signing key, client secrets, ping bearer
//! tokens (`authz.sqlite`) and approval tokens of executing transfers (`mcp.sqlite`).
//!
//! The directory is created 0700 and every file in it 0600 ([`create_private_file`] before SQLite
//! opens a database, whose `-wal` and `-shm` files SQLite then creates with the same mode;
//! [`crate::secrets::write_private_file`] for the rest). A directory left open to others by an older
//! version or another tool is tightened on start, files included, and the log says so.
//! Every component that writes there (dev stack, bank API, authorization server, MCP intent store)
//! calls [`prepare`] first; it is cheap and idempotent.
//!
//! Unless configured, it is [`default_location`]: one per user, whatever directory a command starts
//! in, so that a desktop client's `bankguard serve` finds the credentials `bankguard dev` wrote.

use std::path::{Path, PathBuf};

/// The data directory when none is configured: `bankguard` in the user's data directory, which is
/// `$XDG_DATA_HOME` or else `~/.local/share` (on Linux and macOS alike), and the roaming AppData
/// folder on Windows. Without a home directory, `./.bankguard`.
pub fn default_location() -> PathBuf {
    use etcetera::BaseStrategy;
    match etcetera::choose_base_strategy() {
        Ok(base) => base.data_dir().join("bankguard"),
        Err(_) => PathBuf::from(".bankguard"),
    }
}

/// Creates `dir` (mode 0700) or, if it exists, takes group and other access away from it and from
/// the files directly in it (subdirectories are left alone).
pub fn prepare(dir: &Path) -> std::io::Result<()> {
    if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => tighten(dir),
        Err(error) => Err(error),
    }
}

/// Creates `path` empty with mode 0600 unless it exists; an existing one loses group and other access.
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?;
    #[cfg(unix)]
    restrict(path)?;
    Ok(())
}

#[cfg(unix)]
fn tighten(dir: &Path) -> std::io::Result<()> {
    let mut files = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && restrict(&entry.path())? {
            files += 1;
        }
    }
    let opened = restrict(dir)?;
    if opened || files > 0 {
        tracing::warn!(
            path = %dir.display(),
            files,
            "the data directory was open to other users: tightened it to 0700 and its files to 0600"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Takes every permission away from group and others, if they have any (true if it had to). The
/// owner's bits stay: bankguard's files become 0600 and the directory 0700, and a file someone else
/// put there keeps what its owner may do with it.
#[cfg(unix)]
fn restrict(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode();
    if current & 0o077 == 0 {
        return Ok(false);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & !0o077))?;
    Ok(true)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_directory_is_the_owners_alone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/.bankguard");
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        create_private_file(&dir.join("x.sqlite")).unwrap();
        assert_eq!(mode(&dir.join("x.sqlite")), 0o600);
    }

    #[test]
    fn an_open_directory_and_its_files_are_tightened_and_subdirectories_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(".bankguard");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("bank.sqlite"), b"").unwrap();
        std::fs::set_permissions(dir.join("bank.sqlite"), std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::fs::set_permissions(dir.join("sub"), std::fs::Permissions::from_mode(0o755)).unwrap();

        prepare(&dir).unwrap();

        assert_eq!((mode(&dir), mode(&dir.join("bank.sqlite"))), (0o700, 0o600));
        assert_eq!(mode(&dir.join("sub")), 0o755);
    }

    #[test]
    fn an_existing_file_keeps_its_contents_and_loses_others_access() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("mcp.sqlite");
        std::fs::write(&path, b"data").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        create_private_file(&path).unwrap();
        assert_eq!((mode(&path), std::fs::read(&path).unwrap()), (0o600, b"data".to_vec()));
    }
}
