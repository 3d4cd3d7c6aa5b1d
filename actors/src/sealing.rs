//! Secrets at rest: sealed under a key-encryption key (KEK) that is not in Redis.
//!
//! A webhook signing secret must be known in clear to sign deliveries, so it cannot be hashed
//! as API keys are. It is sealed instead, with XChaCha20-Poly1305 (random 24-byte nonces, no
//! counter to keep), under a KEK read from files outside Redis: a Redis dump, an AOF or a
//! replica then holds only ciphertext. Each sealed value names its key
//! (`sealed1.<key id>.<base64 of nonce and ciphertext>`) and is bound to where it is kept
//! (the associated data: its Redis key), so a value copied to another record does not open.
//!
//! The keys are the files `kek-<id>.key` in one directory (`secrets.key_dir`; else systemd's
//! `$CREDENTIALS_DIRECTORY` when it holds one; else `<data_dir>/keys`, where the first start
//! creates one, mode 0600). Each holds 32 random bytes, raw or as 64 hex digits. The key with
//! the greatest id seals; every key present opens. Rotation is adding a file with a greater id
//! (every daemon sharing the Redis needs it), after which each start re-seals what it finds
//! under older keys ([`crate::webhooks::endpoints::reseal_all`]); an id this daemon has not
//! loaded makes it read the directory again, so daemons restarted one by one keep working.
//!
//! Daemons sharing a Redis must share the keys: one that made its own key could not open what
//! the others sealed, nor they what it sealed, and deliveries would wait forever. So the ids
//! (never the keys) in use are recorded in Redis ([`RECORDED_IDS`]), and a start that lacks
//! a recorded id refuses, rather than make a key, saying which files to copy ([`decide`]).
//! Key files readable by anyone but their owner are refused, as ssh refuses a private key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// What starts a sealed value. Clear JSON (an older version's) never starts with it.
const PREFIX: &str = "sealed1.";
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot read the key directory {dir}: {source}")]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create a key in {dir}: {source}")]
    Create {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} must hold 32 bytes, raw or as 64 hex digits")]
    BadKey { path: PathBuf },
    #[error("no key-encryption key (kek-<id>.key) in {dir}")]
    NoKey { dir: PathBuf },
    #[error(
        "a value is sealed under key {id}, which is not in {dir}: copy kek-{id}.key there \
         from the daemon that made it"
    )]
    UnknownKey { id: String, dir: PathBuf },
    #[error("a sealed value is malformed")]
    Malformed,
    #[error("a sealed value does not open (altered, moved, or sealed under another key {id})")]
    Forged { id: String },
    #[error("no key-encryption key is loaded in this process")]
    NotInstalled,
    #[error(
        "key file {path} is readable by others (mode {mode:o}): the daemon refuses it; \
         `chmod 600` it and make the daemon's user its owner"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error(
        "the Redis is shared with daemons whose secrets are sealed under key(s) {} that are not \
         in {dir} (secrets.key_dir): copy {} there from a daemon that has them, mode 0600; \
         this daemon will not make a key of its own, which the others could not open",
        .missing.join(", "),
        .missing.iter().map(|id| format!("kek-{id}.key")).collect::<Vec<_>>().join(", ")
    )]
    Missing { missing: Vec<String>, dir: PathBuf },
    #[error("cannot read or record the key ids in Redis: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// The key-encryption keys of one directory.
pub struct Keyring {
    dir: PathBuf,
    keys: RwLock<BTreeMap<String, XChaCha20Poly1305>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("dir", &self.dir)
            .field("ids", &self.ids())
            .finish()
    }
}

/// A key id: what may follow `kek-` in a file name and sit between the dots of a value.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn parse_key(bytes: &[u8]) -> Option<[u8; KEY_LEN]> {
    if let Ok(raw) = <[u8; KEY_LEN]>::try_from(bytes) {
        return Some(raw);
    }
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let mut key = [0u8; KEY_LEN];
    hex::decode_to_slice(text, &mut key).ok()?;
    Some(key)
}

fn read_keys(dir: &Path) -> Result<BTreeMap<String, XChaCha20Poly1305>, SealError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SealError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut keys = BTreeMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_prefix("kek-"))
            .and_then(|n| n.strip_suffix(".key"))
        else {
            continue;
        };
        if !valid_id(id) {
            continue;
        }
        let path = entry.path();
        check_private(&path)?;
        let bytes = std::fs::read(&path).map_err(|source| SealError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let key = parse_key(&bytes).ok_or(SealError::BadKey { path: path.clone() })?;
        let cipher =
            XChaCha20Poly1305::new_from_slice(&key).map_err(|_| SealError::BadKey { path })?;
        keys.insert(id.to_string(), cipher);
    }
    Ok(keys)
}

/// Refuse a key file that its group or others may read or write (`chmod 600`).
fn check_private(path: &Path) -> Result<(), SealError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| SealError::ReadDir {
            dir: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(SealError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Whether `dir` holds a file named as a key (read or not: a credential refused for its mode
/// is reported, not passed over for another directory).
fn holds_key_file(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("kek-"))
                .and_then(|n| n.strip_suffix(".key"))
                .is_some_and(valid_id)
        })
    })
}

/// Write a new random key `kek-<id>.key` (mode 0600, its directory 0700); the id is the
/// time, so a later key sorts after.
pub fn create_key(dir: &Path) -> Result<PathBuf, SealError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let err = |source| SealError::Create {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    let id = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let path = dir.join(format!("kek-{id}.key"));
    let key: [u8; KEY_LEN] = rand::random();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(err)?;
    f.write_all(hex::encode(key).as_bytes()).map_err(err)?;
    f.write_all(b"\n").map_err(err)?;
    f.sync_all().map_err(err)?;
    Ok(path)
}

/// Where the keys are: `configured` if set; else `$CREDENTIALS_DIRECTORY` when it holds a
/// key; else `<data_dir>/keys`. The second value: whether a missing key may be created there.
pub fn key_dir(configured: &str, credentials: Option<PathBuf>, data_dir: &Path) -> (PathBuf, bool) {
    if !configured.is_empty() {
        return (PathBuf::from(configured), true);
    }
    if let Some(creds) = credentials
        && holds_key_file(&creds)
    {
        return (creds, false);
    }
    (data_dir.join("keys"), true)
}

/// Where the ids of the keys in use are recorded: a set of ids, never key material.
pub const RECORDED_IDS: &str = "cp:sealing:keys";

/// What a start does with its key directory, given the ids recorded in the shared Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyDecision {
    /// Seal and open with the keys found.
    Use,
    /// Make the first key (no key here, none recorded, and the directory may hold one).
    Create,
    /// Recorded ids are missing here: refuse to start.
    Refuse { missing: Vec<String> },
    /// No key here and none may be made here.
    NoKey,
}

/// Decide from the ids found in the directory and those recorded in Redis. A daemon lacking
/// any recorded id would seal or open under keys the others do not share, so it refuses.
pub fn decide(
    found: &BTreeSet<String>,
    recorded: &BTreeSet<String>,
    may_create: bool,
) -> KeyDecision {
    let missing: Vec<String> = recorded.difference(found).cloned().collect();
    if !missing.is_empty() {
        KeyDecision::Refuse { missing }
    } else if !found.is_empty() {
        KeyDecision::Use
    } else if may_create {
        KeyDecision::Create
    } else {
        KeyDecision::NoKey
    }
}

/// Record `ids` unless the set holds others: answers the recorded ids missing from `ids`
/// (empty when recorded). One script, so two first starts racing cannot both record.
static RECORD: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        "local mine = {} for _, id in ipairs(ARGV) do mine[id] = true end \
         local missing = {} \
         for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do \
           if not mine[id] then table.insert(missing, id) end end \
         if #missing == 0 then redis.call('SADD', KEYS[1], unpack(ARGV)) end \
         return missing",
    )
});

impl Keyring {
    /// The keys of `dir`; with none there and `create`, a new one is made first.
    pub fn load(dir: &Path, create: bool) -> Result<Keyring, SealError> {
        Self::load_with(dir, create, &BTreeSet::new()).map(|(ring, _)| ring)
    }

    /// The keys of `dir`, as [`decide`] rules given the ids `recorded` in Redis; also answers
    /// the path of a key made now (to remove should recording it lose a race).
    fn load_with(
        dir: &Path,
        create: bool,
        recorded: &BTreeSet<String>,
    ) -> Result<(Keyring, Option<PathBuf>), SealError> {
        let mut keys = if dir.exists() {
            read_keys(dir)?
        } else {
            BTreeMap::new()
        };
        let found: BTreeSet<String> = keys.keys().cloned().collect();
        let mut made = None;
        match decide(&found, recorded, create) {
            KeyDecision::Use => {}
            KeyDecision::Create => {
                let path = create_key(dir)?;
                tracing::info!(path = %path.display(), "created the key that seals secrets at rest");
                keys = read_keys(dir)?;
                made = Some(path);
            }
            KeyDecision::Refuse { missing } => {
                return Err(SealError::Missing {
                    missing,
                    dir: dir.to_path_buf(),
                });
            }
            KeyDecision::NoKey => {}
        }
        if keys.is_empty() {
            return Err(SealError::NoKey {
                dir: dir.to_path_buf(),
            });
        }
        let ring = Keyring {
            dir: dir.to_path_buf(),
            keys: RwLock::new(keys),
        };
        Ok((ring, made))
    }

    /// The keys of `dir`, agreed with the other daemons sharing `store`: refused if Redis
    /// records an id missing here; else this daemon's ids are recorded there.
    pub async fn load_shared(
        dir: &Path,
        create: bool,
        store: &crate::store::Store,
    ) -> Result<Keyring, SealError> {
        let mut c = store.conn();
        let recorded: BTreeSet<String> = store
            .run(redis::AsyncCommands::smembers(&mut c, RECORDED_IDS))
            .await?;
        let (ring, made) = Self::load_with(dir, create, &recorded)?;
        let missing: Vec<String> = store
            .run(
                RECORD
                    .key(RECORDED_IDS)
                    .arg(ring.ids())
                    .invoke_async(&mut c),
            )
            .await?;
        if !missing.is_empty() {
            // Another daemon recorded its first key meanwhile: this one's is of no use.
            if let Some(path) = made {
                let _ = std::fs::remove_file(path);
            }
            return Err(SealError::Missing {
                missing,
                dir: dir.to_path_buf(),
            });
        }
        Ok(ring)
    }

    /// The ids loaded, oldest first; the last seals.
    pub fn ids(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, XChaCha20Poly1305>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The id of the key that seals now.
    pub fn current(&self) -> String {
        self.read().keys().next_back().cloned().unwrap_or_default()
    }

    /// Seal `clear`, bound to `place` (where it will be kept).
    pub fn seal(&self, clear: &[u8], place: &str) -> String {
        let keys = self.read();
        let Some((id, cipher)) = keys.iter().next_back() else {
            // `load` refuses an empty ring.
            return String::new();
        };
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: clear,
                    aad: place.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut packed = nonce.to_vec();
        packed.extend_from_slice(&sealed);
        format!("{PREFIX}{id}.{}", URL_SAFE_NO_PAD.encode(packed))
    }

    /// Open a value sealed for `place`.
    pub fn open(&self, sealed: &str, place: &str) -> Result<Vec<u8>, SealError> {
        let (id, body) = sealed
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('.'))
            .ok_or(SealError::Malformed)?;
        if !self.read().contains_key(id) {
            // A key added since start (rotation on another daemon): read the directory again.
            if let Ok(keys) = read_keys(&self.dir) {
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
            }
        }
        let keys = self.read();
        let cipher = keys.get(id).ok_or_else(|| SealError::UnknownKey {
            id: id.to_string(),
            dir: self.dir.clone(),
        })?;
        let packed = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Malformed)?;
        if packed.len() < NONCE_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = packed.split_at(NONCE_LEN);
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: place.as_bytes(),
                },
            )
            .map_err(|_| SealError::Forged { id: id.to_string() })
    }
}

/// Whether a stored value is sealed (else it is an older version's clear text).
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(PREFIX)
}

/// The id of the key a sealed value names.
pub fn key_id(value: &str) -> Option<&str> {
    value
        .strip_prefix(PREFIX)?
        .split_once('.')
        .map(|(id, _)| id)
}

static KEYRING: OnceLock<Arc<Keyring>> = OnceLock::new();

/// Make `ring` the process's keyring (once, at start; later calls keep the first).
pub fn install(ring: Keyring) -> Arc<Keyring> {
    KEYRING.get_or_init(|| Arc::new(ring)).clone()
}

/// The process's keyring.
pub fn keyring() -> Result<&'static Keyring, SealError> {
    KEYRING
        .get()
        .map(Arc::as_ref)
        .ok_or(SealError::NotInstalled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Write a key file as an operator would, `chmod 600`.
    fn write_private(path: &Path, bytes: &[u8]) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, bytes).expect("key file");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }

    fn ids(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_start_lacking_a_recorded_key_refuses_rather_than_make_its_own() {
        let cases: &[(&[&str], &[&str], bool, KeyDecision)] = &[
            (&[], &[], true, KeyDecision::Create),
            (&[], &[], false, KeyDecision::NoKey),
            (&["1"], &[], true, KeyDecision::Use),
            (&["1"], &["1"], true, KeyDecision::Use),
            // Rotation: this daemon has a newer key the others do not record yet.
            (&["1", "2"], &["1"], false, KeyDecision::Use),
            (
                &[],
                &["1"],
                true,
                KeyDecision::Refuse {
                    missing: vec!["1".into()],
                },
            ),
            (
                &["1"],
                &["1", "2"],
                true,
                KeyDecision::Refuse {
                    missing: vec!["2".into()],
                },
            ),
            (
                &["3"],
                &["1", "2"],
                false,
                KeyDecision::Refuse {
                    missing: vec!["1".into(), "2".into()],
                },
            ),
        ];
        for (found, recorded, may_create, want) in cases {
            assert_eq!(
                &decide(&ids(found), &ids(recorded), *may_create),
                want,
                "found {found:?}, recorded {recorded:?}, may create {may_create}"
            );
        }
        let dir = tempfile::tempdir().expect("tmp");
        let refused =
            Keyring::load_with(dir.path(), true, &ids(&["20270101000000"])).expect_err("refused");
        let said = refused.to_string();
        assert!(
            said.contains("secrets.key_dir") && said.contains("kek-20270101000000.key"),
            "{said}"
        );
        assert!(
            std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
            "no key made"
        );
    }

    #[test]
    fn a_key_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("kek-1.key");
        write_private(&path, &[1u8; 32]);
        assert!(Keyring::load(dir.path(), false).is_ok());
        for mode in [0o640, 0o604, 0o644, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let err = Keyring::load(dir.path(), false).expect_err("refused");
            assert!(
                matches!(err, SealError::Exposed { mode: m, .. } if m == mode),
                "{mode:o}: {err}"
            );
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        assert!(Keyring::load(dir.path(), false).is_ok(), "0400 is private");
    }

    #[test]
    fn sealed_values_open_only_in_their_place_and_under_their_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let ring = Keyring::load(dir.path(), true).expect("first key");
        let sealed = ring.seal(b"whsec_abc", "cp:{prj_1}:test:obj:we_1");
        assert!(
            is_sealed(&sealed) && !sealed.contains("whsec_abc"),
            "{sealed}"
        );
        assert_eq!(
            ring.open(&sealed, "cp:{prj_1}:test:obj:we_1")
                .expect("opens"),
            b"whsec_abc"
        );
        assert!(matches!(
            ring.open(&sealed, "cp:{prj_1}:test:obj:we_2"),
            Err(SealError::Forged { .. })
        ));
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(ring.open(&altered, "cp:{prj_1}:test:obj:we_1").is_err());
        assert!(matches!(ring.open("[]", "x"), Err(SealError::Malformed)));
        // Two seals of one value differ (random nonces).
        assert_ne!(sealed, ring.seal(b"whsec_abc", "cp:{prj_1}:test:obj:we_1"));
    }

    #[test]
    fn the_key_file_is_private_and_a_later_key_takes_over_while_old_ones_open() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let keys = dir.path().join("keys");
        let ring = Keyring::load(&keys, true).expect("first key");
        let first = ring.current();
        let file = keys.join(format!("kek-{first}.key"));
        let mode = std::fs::metadata(&file)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let dir_mode = std::fs::metadata(&keys).expect("dir").permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700, "{dir_mode:o}");
        let old = ring.seal(b"s1", "p");

        // Rotation: a raw 32-byte key with a greater id, added while running.
        write_private(&keys.join("kek-99990101000000.key"), &[7u8; 32]);
        let later = Keyring::load(&keys, false).expect("both keys");
        assert_eq!(later.current(), "99990101000000");
        assert_eq!(later.open(&old, "p").expect("old key still opens"), b"s1");
        let new = later.seal(b"s2", "p");
        assert_eq!(key_id(&new), Some("99990101000000"));
        // The running ring learns the new key when it meets it.
        assert_eq!(ring.open(&new, "p").expect("reloaded"), b"s2");

        std::fs::remove_file(keys.join("kek-99990101000000.key")).expect("rm");
        let without = Keyring::load(&keys, false).expect("first only");
        assert!(matches!(
            without.open(&new, "p"),
            Err(SealError::UnknownKey { .. })
        ));
    }

    #[test]
    fn no_key_and_no_right_to_create_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(matches!(
            Keyring::load(dir.path(), false),
            Err(SealError::NoKey { .. })
        ));
        write_private(&dir.path().join("kek-1.key"), b"short");
        assert!(matches!(
            Keyring::load(dir.path(), false),
            Err(SealError::BadKey { .. })
        ));
    }

    #[test]
    fn the_key_directory_follows_setting_then_credentials_then_data_dir() {
        let data = Path::new("/var/lib/calmony");
        let creds = tempfile::tempdir().expect("tmp");
        assert_eq!(
            key_dir("/etc/calmony/keys", Some(creds.path().into()), data),
            (PathBuf::from("/etc/calmony/keys"), true)
        );
        // A credentials directory without a key is not taken.
        assert_eq!(
            key_dir("", Some(creds.path().into()), data),
            (data.join("keys"), true)
        );
        std::fs::write(creds.path().join("kek-1.key"), [1u8; 32]).expect("key");
        assert_eq!(
            key_dir("", Some(creds.path().into()), data),
            (creds.path().to_path_buf(), false)
        );
    }
}
