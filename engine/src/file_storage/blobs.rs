//! Content-addressed blobs behind Convex file storage (`ctx.storage`, upload URLs).
//!
//! A file's bytes are stored once, named by their BLAKE3 digest, so identical
//! uploads share one file and a name can never point at different content. The
//! database rows that give files their storage ids live elsewhere; this module
//! only owns the bytes on disk: writing them durably, finding them again, and
//! collecting the ones no row refers to any more. SHA-256 is computed on the
//! way in because Convex reports it to clients as a file's checksum.
//!
//! Layout under the store's root:
//! - `blobs/<first 2 hex chars>/<64 hex chars>`: finished blobs, sharded so no
//!   directory grows huge.
//! - `tmp/<random>`: uploads in progress; renamed into `blobs/` once complete,
//!   so a reader never sees a half-written blob.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ring::rand::{SecureRandom, SystemRandom};

/// How many finished-but-uncommitted uploads hold each digest; see [`BlobStore::collect`].
type Pins = Arc<Mutex<HashMap<String, usize>>>;

const DIGEST_HEX_LEN: usize = 64;

/// The blob files under one root directory.
#[derive(Debug)]
pub struct BlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
    pins: Pins,
}

impl BlobStore {
    /// Opens (creating) `root/blobs` and `root/tmp`. Anything left in `root/tmp`
    /// is an upload a crash interrupted and nobody can finish, so it is removed.
    /// Call it once per root at startup, before any upload starts.
    pub fn open(root: &Path) -> io::Result<BlobStore> {
        let store = BlobStore {
            blobs: root.join("blobs"),
            tmp: root.join("tmp"),
            pins: Pins::default(),
        };
        fs::create_dir_all(&store.blobs)?;
        fs::create_dir_all(&store.tmp)?;
        // Blobs are only as durable as the directory entries leading to them.
        sync_dir(root)?;
        let removed = store.clear_tmp()?;
        if removed > 0 {
            tracing::info!(removed, dir = %store.tmp.display(), "removed interrupted uploads");
        }
        Ok(store)
    }

    fn clear_tmp(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.tmp)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Starts an upload into a fresh temporary file.
    pub fn writer(&self) -> io::Result<BlobWriter> {
        let path = self.tmp.join(random_name()?);
        // `create_new` so even a repeated random name cannot mix two uploads.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(BlobWriter {
            file,
            temp: TempPath { path, armed: true },
            blake3: blake3::Hasher::new(),
            sha256: ring::digest::Context::new(&ring::digest::SHA256),
            size: 0,
        })
    }

    /// Where the blob with this BLAKE3 hex digest lives, whether or not it exists.
    /// `None` unless `blake3_hex` is exactly 64 lowercase hex characters: ids come
    /// from clients, and this keeps a hostile one from naming a path outside the store.
    pub fn path_of(&self, blake3_hex: &str) -> Option<PathBuf> {
        is_digest(blake3_hex).then(|| self.blob_path(blake3_hex))
    }

    /// The stored blob, or `None` if there is none (a malformed digest names none).
    pub fn open_blob(&self, blake3_hex: &str) -> io::Result<Option<File>> {
        let Some(path) = self.path_of(blake3_hex) else {
            return Ok(None);
        };
        match File::open(path) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes every blob that is neither pinned nor referenced, returning how many
    /// it deleted. Stops at the first error from `is_referenced`.
    ///
    /// Why this cannot delete a blob a committed row refers to: an upload pins its
    /// digest before the blob becomes visible and unpins only after the row naming
    /// it committed (or failed). This pass holds the pin lock from start to end, so
    /// every blob it sees is either pinned, and skipped, or was finished by an upload
    /// whose row, if any, committed before the pass began. `is_referenced` must
    /// therefore read the latest committed state, not a snapshot older than the call.
    ///
    /// Uploads finishing meanwhile wait for the pass to end, and `is_referenced`
    /// must not wait for an upload, or both would wait forever.
    pub fn collect(
        &self,
        mut is_referenced: impl FnMut(&str) -> io::Result<bool>,
    ) -> io::Result<usize> {
        let pins = lock(&self.pins);
        let mut deleted = 0;
        self.for_each_blob(|hex, path| {
            deleted += usize::from(collect_one(&pins, hex, path, &mut is_referenced)?);
            Ok(())
        })?;
        Ok(deleted)
    }

    /// `collect` for `candidates` only (blobs that commits stopped referring
    /// to), so that deleting a file costs one lookup, not a pass over every blob.
    pub fn collect_candidates<'a>(
        &self,
        candidates: impl IntoIterator<Item = &'a str>,
        mut is_referenced: impl FnMut(&str) -> io::Result<bool>,
    ) -> io::Result<usize> {
        let pins = lock(&self.pins);
        let mut deleted = 0;
        for hex in candidates {
            match self.path_of(hex) {
                Some(path) if path.exists() => {
                    deleted += usize::from(collect_one(&pins, hex, &path, &mut is_referenced)?)
                }
                _ => {}
            }
        }
        Ok(deleted)
    }

    /// How many blobs are stored.
    pub fn count(&self) -> io::Result<usize> {
        let mut count = 0;
        self.for_each_blob(|_, _| {
            count += 1;
            Ok(())
        })?;
        Ok(count)
    }

    /// Calls `visit` with the digest and path of every blob file. Entries that are
    /// not named like a blob are not ours to count or delete, so they are skipped.
    fn for_each_blob(
        &self,
        mut visit: impl FnMut(&str, &Path) -> io::Result<()>,
    ) -> io::Result<()> {
        for shard in fs::read_dir(&self.blobs)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(shard.path())? {
                let entry = entry?;
                let name = entry.file_name();
                match name.to_str() {
                    Some(hex) if is_digest(hex) && entry.file_type()?.is_file() => {
                        visit(hex, &entry.path())?
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn shard_dir(&self, hex: &str) -> PathBuf {
        self.blobs.join(&hex[..2])
    }

    fn blob_path(&self, hex: &str) -> PathBuf {
        self.shard_dir(hex).join(hex)
    }

    fn pin(&self, hex: &str) -> Pin {
        *lock(&self.pins).entry(hex.to_owned()).or_default() += 1;
        Pin {
            pins: Arc::clone(&self.pins),
            hex: hex.to_owned(),
        }
    }

    /// Moves a finished, synced temp file to its digest's place, durably.
    fn place(&self, temp: TempPath, hex: &str) -> io::Result<()> {
        let dest = self.blob_path(hex);
        if dest.try_exists()? {
            // Same digest, same bytes: the stored copy serves both, and dropping
            // `temp` removes ours.
            return Ok(());
        }
        let shard = self.shard_dir(hex);
        self.ensure_shard(&shard)?;
        temp.persist(&dest)?;
        // A rename survives a crash only once its directory is synced.
        sync_dir(&shard)
    }

    fn ensure_shard(&self, shard: &Path) -> io::Result<()> {
        match fs::create_dir(shard) {
            // A new shard is itself a directory entry that must survive a crash.
            Ok(()) => sync_dir(&self.blobs),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// An upload in progress. Dropping it unfinished removes its temp file, so an
/// aborted upload leaves nothing behind.
pub struct BlobWriter {
    file: File,
    temp: TempPath,
    blake3: blake3::Hasher,
    sha256: ring::digest::Context,
    size: u64,
}

impl BlobWriter {
    /// Appends `chunk` to the blob.
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.file.write_all(chunk)?;
        self.blake3.update(chunk);
        self.sha256.update(chunk);
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Makes the blob durable and visible in `store` (the store that made this
    /// writer). The returned [`StoredBlob`] keeps the blob safe from
    /// [`BlobStore::collect`] until it is dropped, which the caller does once the
    /// row referring to the blob has committed. May wait for a collection pass,
    /// so async callers should run it on a blocking thread.
    pub fn finish(self, store: &BlobStore) -> io::Result<StoredBlob> {
        let BlobWriter {
            file,
            temp,
            blake3,
            sha256,
            size,
        } = self;
        file.sync_all()?;
        drop(file);
        let blake3 = blake3.finalize().to_hex().to_string();
        let sha256 = sha256
            .finish()
            .as_ref()
            .try_into()
            .expect("a SHA-256 digest is 32 bytes");
        // Pinned before the blob can be seen, so no collection pass can delete it
        // between becoming visible and its row committing.
        let pin = store.pin(&blake3);
        store.place(temp, &blake3)?;
        Ok(StoredBlob {
            blake3,
            sha256,
            size,
            _pin: pin,
        })
    }
}

/// A blob that is on disk and pinned: collection skips it until this is dropped.
#[derive(Debug)]
pub struct StoredBlob {
    /// The BLAKE3 digest, 64 lowercase hex characters: the blob's name.
    pub blake3: String,
    pub sha256: [u8; 32],
    pub size: u64,
    _pin: Pin,
}

/// One hold on a digest; owns an `Arc` of the pins rather than borrowing the
/// store so a [`StoredBlob`] can be kept across an await.
#[derive(Debug)]
struct Pin {
    pins: Pins,
    hex: String,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut pins = lock(&self.pins);
        if let Some(count) = pins.get_mut(&self.hex) {
            *count -= 1;
            if *count == 0 {
                pins.remove(&self.hex);
            }
        }
    }
}

/// A temp file's path, removed on drop unless it was persisted.
struct TempPath {
    path: PathBuf,
    armed: bool,
}

impl TempPath {
    fn persist(mut self, dest: &Path) -> io::Result<()> {
        fs::rename(&self.path, dest)?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Err(error) = fs::remove_file(&self.path) {
            tracing::warn!(%error, path = %self.path.display(), "cannot remove temporary blob file");
        }
    }
}

/// The pin map is only changed by short updates that cannot panic halfway, so a
/// panic elsewhere while it was locked (say in `is_referenced`) leaves it intact.
/// Deletes one blob unless it is pinned or referenced; whether it did.
fn collect_one(
    pins: &HashMap<String, usize>,
    hex: &str,
    path: &Path,
    is_referenced: &mut impl FnMut(&str) -> io::Result<bool>,
) -> io::Result<bool> {
    if pins.contains_key(hex) || is_referenced(hex)? {
        return Ok(false);
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        // One stuck file should not stop the rest from being collected.
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "cannot delete unreferenced blob");
            Ok(false)
        }
    }
}

fn lock(pins: &Mutex<HashMap<String, usize>>) -> MutexGuard<'_, HashMap<String, usize>> {
    pins.lock().unwrap_or_else(PoisonError::into_inner)
}

fn is_digest(s: &str) -> bool {
    s.len() == DIGEST_HEX_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn random_name() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| io::Error::other("system random number generator failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use tempfile::TempDir;

    fn store() -> (TempDir, BlobStore) {
        let dir = TempDir::new().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        (dir, store)
    }

    fn put(store: &BlobStore, chunks: &[&[u8]]) -> StoredBlob {
        let mut writer = store.writer().unwrap();
        for chunk in chunks {
            writer.write(chunk).unwrap();
        }
        writer.finish(store).unwrap()
    }

    fn tmp_entries(dir: &TempDir) -> usize {
        fs::read_dir(dir.path().join("tmp")).unwrap().count()
    }

    fn hex_of(data: &[u8]) -> String {
        blake3::hash(data).to_hex().to_string()
    }

    #[test]
    fn finish_reports_digests_and_stores_the_bytes() {
        let (dir, store) = store();
        let mut writer = store.writer().unwrap();
        writer.write(b"hello, ").unwrap();
        writer.write(b"world").unwrap();
        assert_eq!(writer.size(), 12);
        let blob = writer.finish(&store).unwrap();

        let data = b"hello, world";
        assert_eq!(blob.blake3, hex_of(data));
        assert_eq!(
            blob.sha256[..],
            *ring::digest::digest(&ring::digest::SHA256, data).as_ref()
        );
        assert_eq!(blob.size, 12);
        assert_eq!(
            fs::read(store.path_of(&blob.blake3).unwrap()).unwrap(),
            data
        );
        let mut read = Vec::new();
        let mut file = store.open_blob(&blob.blake3).unwrap().unwrap();
        file.read_to_end(&mut read).unwrap();
        assert_eq!(read, data);
        assert_eq!(tmp_entries(&dir), 0);
    }

    #[test]
    fn empty_blob() {
        let (_dir, store) = store();
        let blob = store.writer().unwrap().finish(&store).unwrap();
        assert_eq!(blob.blake3, hex_of(b""));
        assert_eq!(
            blob.sha256[..],
            *ring::digest::digest(&ring::digest::SHA256, b"").as_ref()
        );
        assert_eq!(blob.size, 0);
        assert!(fs::read(store.path_of(&blob.blake3).unwrap())
            .unwrap()
            .is_empty());
        assert_eq!(store.count().unwrap(), 1);
    }

    #[test]
    fn identical_uploads_share_one_file() {
        let (dir, store) = store();
        let mut first = store.writer().unwrap();
        let mut second = store.writer().unwrap();
        first.write(b"same").unwrap();
        second.write(b"same").unwrap();
        let a = first.finish(&store).unwrap();
        let b = second.finish(&store).unwrap();
        assert_eq!(a.blake3, b.blake3);
        assert_eq!(store.count().unwrap(), 1);
        assert_eq!(tmp_entries(&dir), 0);
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let (dir, store) = store();
        let mut writer = store.writer().unwrap();
        writer.write(b"abandoned").unwrap();
        assert_eq!(tmp_entries(&dir), 1);
        drop(writer);
        assert_eq!(tmp_entries(&dir), 0);
        assert_eq!(store.count().unwrap(), 0);
    }

    #[test]
    fn open_removes_interrupted_uploads() {
        let (dir, _store) = store();
        fs::write(dir.path().join("tmp/partial-1"), b"half").unwrap();
        fs::write(dir.path().join("tmp/partial-2"), b"written").unwrap();
        BlobStore::open(dir.path()).unwrap();
        assert_eq!(tmp_entries(&dir), 0);
    }

    #[test]
    fn collect_deletes_only_unpinned_unreferenced_blobs() {
        let (_dir, store) = store();
        let garbage = put(&store, &[b"garbage"]).blake3;
        let kept = put(&store, &[b"kept"]).blake3;
        let pinned = put(&store, &[b"pinned"]);
        let referenced = |hex: &str| Ok(hex == kept);

        assert_eq!(store.collect(referenced).unwrap(), 1);
        assert!(store.open_blob(&garbage).unwrap().is_none());
        assert!(store.open_blob(&kept).unwrap().is_some());
        assert!(store.open_blob(&pinned.blake3).unwrap().is_some());

        let pinned_hex = pinned.blake3.clone();
        drop(pinned);
        assert_eq!(store.collect(referenced).unwrap(), 1);
        assert!(store.open_blob(&pinned_hex).unwrap().is_none());
        assert_eq!(store.count().unwrap(), 1);
    }

    #[test]
    fn collect_candidates_looks_at_nothing_else() {
        let (_dir, store) = store();
        let named = put(&store, &[b"named"]).blake3;
        let other = put(&store, &[b"other"]).blake3;
        let pinned = put(&store, &[b"pinned"]);
        let mut asked = Vec::new();
        let candidates = [named.as_str(), pinned.blake3.as_str(), "not a digest", &"0".repeat(64)];
        let deleted = store
            .collect_candidates(candidates, |hex| {
                asked.push(hex.to_owned());
                Ok(false)
            })
            .unwrap();
        assert_eq!(deleted, 1);
        // Pinned, malformed and absent candidates are never looked up.
        assert_eq!(asked, vec![named.clone()]);
        assert!(store.open_blob(&named).unwrap().is_none());
        assert!(store.open_blob(&other).unwrap().is_some());
        assert!(store.open_blob(&pinned.blake3).unwrap().is_some());
    }

    #[test]
    fn collect_never_asks_about_pinned_blobs() {
        let (_dir, store) = store();
        let pinned = put(&store, &[b"pinned"]);
        let deleted = store
            .collect(|hex| panic!("asked about pinned blob {hex}"))
            .unwrap();
        assert_eq!(deleted, 0);
        drop(pinned);
    }

    #[test]
    fn each_upload_of_the_same_content_pins_it() {
        let (_dir, store) = store();
        let first = put(&store, &[b"twice"]);
        let second = put(&store, &[b"twice"]);
        drop(first);
        assert_eq!(store.collect(|_| Ok(false)).unwrap(), 0);
        drop(second);
        assert_eq!(store.collect(|_| Ok(false)).unwrap(), 1);
        assert_eq!(store.count().unwrap(), 0);
    }

    #[test]
    fn collect_stops_at_the_first_lookup_error() {
        let (_dir, store) = store();
        drop(put(&store, &[b"one"]));
        drop(put(&store, &[b"two"]));
        let err = store
            .collect(|_| Err(io::Error::other("database unavailable")))
            .unwrap_err();
        assert_eq!(err.to_string(), "database unavailable");
        assert_eq!(store.count().unwrap(), 2);
    }

    #[test]
    fn path_of_accepts_only_lowercase_64_hex() {
        let (dir, store) = store();
        let hex = hex_of(b"x");
        assert_eq!(
            store.path_of(&hex).unwrap(),
            dir.path().join("blobs").join(&hex[..2]).join(&hex)
        );
        for bad in [
            "../x".to_owned(),
            format!("../{}", &hex[3..]),
            hex.to_uppercase(),
            hex[1..].to_owned(),
            format!("{hex}0"),
            String::new(),
        ] {
            assert_eq!(store.path_of(&bad), None, "{bad:?}");
            assert!(store.open_blob(&bad).unwrap().is_none());
        }
    }

    #[test]
    fn stored_blob_can_cross_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<StoredBlob>();
    }
}
