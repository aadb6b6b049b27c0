//! Files the service creates hold secrets — the SQLite database has every
//! password hash, the master key seals the signing keys — so they are created
//! private to the service's user (files 0600, directories 0700), whatever the
//! process umask, and a secret file that others can read is refused.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;

/// Creates `dir` and its missing parents, new ones private to this user.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

/// Opens `path` for reading and writing, creating it (mode 0600) when it does
/// not exist; an existing file keeps its contents and its mode.
pub fn private_file(path: &Path) -> io::Result<File> {
    private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// The permission bits of `path` that let group or others in, if any.
pub fn open_to_others(path: &Path) -> io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        Ok((mode & 0o077 != 0).then_some(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

/// What became of a `create_secret_file` call.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    /// This process wrote the file.
    Written,
    /// Another process created it first; its contents stand.
    AlreadyThere,
}

/// Creates `path` (mode 0600) holding `contents`, atomically: the contents go
/// to a private temporary file that is then linked into place, which fails if
/// the name exists. So the file is never seen half-written, and of two
/// processes creating it at once exactly one wins and the other reads it.
pub fn create_secret_file(path: &Path, contents: &[u8]) -> io::Result<Created> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    ));
    let written = (|| {
        let mut file = private_options()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(Created::Written),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Created::AlreadyThere),
        Err(e) => Err(e),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_is_created_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        assert_eq!(create_secret_file(&path, b"one").unwrap(), Created::Written);
        assert_eq!(
            create_secret_file(&path, b"two").unwrap(),
            Created::AlreadyThere
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        assert_eq!(open_to_others(&path).unwrap(), None);
        assert_eq!(open_to_others(path.parent().unwrap()).unwrap(), None);
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn of_many_processes_creating_a_secret_file_at_once_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let winners: Vec<_> = (0..16)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || create_secret_file(&path, format!("{i}").as_bytes()))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .filter(|c| *c == Created::Written)
            .collect();
        assert_eq!(winners.len(), 1);
    }

    #[test]
    fn a_file_readable_by_others_is_reported() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, b"x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(open_to_others(&path).unwrap(), Some(0o644));
    }
}
