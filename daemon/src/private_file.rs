//! Files only the daemon's user may read: the first start's test key and the registry's
//! entries both hold what another local user must not see. A leaf, so start-up and the
//! registry (which start-up uses) can both write through it.

/// Write `contents` to a new file at `path` readable and writable by this user only.
pub fn write_private(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A file left by an earlier store is replaced, never reopened with its old mode.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}
