//! The blob store in a local (or network-mounted) folder:
//!
//! ```text
//! <dir>/ab/cd/abcd…(64 hex)            an upload's bytes, named by their SHA-256
//! <dir>/ab/cd/abcd….thumb.jpg          its thumbnail, for images the server could decode
//! <dir>/tmp/                           uploads being written, and blobs being swept
//! ```
//!
//! Writes go to a temporary file in `<dir>/tmp/` (same file system), which is synced and renamed
//! over the final name: a crash leaves at most a temporary file, never a partial blob. Renaming
//! over an existing blob with the same name is safe, since the same name means the same bytes.
//! Several instances may share the folder: nothing here relies on being the only writer.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{BlobKey, BlobKind, BlobStore, TempBlob};

const TMP: &str = "tmp";
const THUMBNAIL_SUFFIX: &str = ".thumb.jpg";

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store in `root`; nothing is created until the first write.
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `key` lives: `ab/cd/<hash>` (two levels of 256 folders keep each folder small).
    pub fn path(&self, key: &BlobKey) -> PathBuf {
        let hash = key.sha256();
        let name = match key.kind {
            BlobKind::Original => hash.to_owned(),
            BlobKind::Thumbnail => format!("{hash}{THUMBNAIL_SUFFIX}"),
        };
        self.root.join(&hash[0..2]).join(&hash[2..4]).join(name)
    }

    fn tmp(&self) -> io::Result<PathBuf> {
        let dir = self.root.join(TMP);
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// The key a stored file's name stands for, if it is one.
    fn key_of(name: &str) -> Option<BlobKey> {
        match name.strip_suffix(THUMBNAIL_SUFFIX) {
            Some(hash) => BlobKey::thumbnail(hash),
            None => BlobKey::original(name),
        }
    }
}

fn is_fanout_dir(name: &str) -> bool {
    name.len() == 2
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The entries of `dir`; a missing folder has none.
fn entries(dir: &Path) -> io::Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(list) => list.collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Makes a rename in `dir` durable (best effort: not every file system can sync a folder).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl BlobStore for LocalStore {
    fn temp_file(&self) -> io::Result<TempBlob> {
        tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(self.tmp()?)
    }

    fn put(&self, key: &BlobKey, file: TempBlob) -> io::Result<()> {
        let path = self.path(key);
        let dir = path
            .parent()
            .ok_or_else(|| io::Error::other("a blob path has a parent"))?;
        fs::create_dir_all(dir)?;
        // The sweep judges a blob's age by this time: it is the moment of publishing, however
        // long ago the bytes were written.
        file.as_file().set_modified(SystemTime::now())?;
        file.persist(&path).map_err(|e| e.error)?;
        sync_dir(dir);
        Ok(())
    }

    fn open(&self, key: &BlobKey) -> io::Result<Option<File>> {
        match File::open(self.path(key)) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn exists(&self, key: &BlobKey) -> io::Result<bool> {
        self.path(key).try_exists()
    }

    fn delete(&self, key: &BlobKey) -> io::Result<()> {
        match fs::remove_file(self.path(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn list_written_before(&self, before: SystemTime) -> io::Result<Vec<BlobKey>> {
        let mut found = Vec::new();
        for top in entries(&self.root)? {
            let name = top.file_name();
            if !name.to_str().is_some_and(is_fanout_dir) || !top.file_type()?.is_dir() {
                continue;
            }
            for mid in entries(&top.path())? {
                if !mid.file_name().to_str().is_some_and(is_fanout_dir)
                    || !mid.file_type()?.is_dir()
                {
                    continue;
                }
                for file in entries(&mid.path())? {
                    let Some(key) = file.file_name().to_str().and_then(Self::key_of) else {
                        continue;
                    };
                    // Gone since the listing (another instance's sweep): skip it.
                    let Ok(meta) = file.metadata() else { continue };
                    if meta.is_file() && meta.modified()? < before {
                        found.push(key);
                    }
                }
            }
        }
        Ok(found)
    }

    /// Moves the blob aside first (atomically), then looks at the time it was last published:
    /// if an upload published it again after `before` (it may have done so just before the
    /// move), it is put back; otherwise it is deleted. An upload that publishes after the move
    /// creates a new file under the name, which this call never touches.
    fn remove_if_stale(&self, key: &BlobKey, before: SystemTime) -> io::Result<bool> {
        let path = self.path(key);
        let aside = self.tmp()?.join(format!(
            "sweep-{:016x}-{}",
            rand::random::<u64>(),
            path.file_name().and_then(|n| n.to_str()).unwrap_or("blob")
        ));
        match fs::rename(&path, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        }
        if fs::metadata(&aside)?.modified()? >= before {
            // Put back, unless an upload has published the same bytes again meanwhile.
            match fs::hard_link(&aside, &path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(_) if !path.try_exists()? => return fs::rename(&aside, &path).map(|()| false),
                Err(e) => return Err(e),
            }
            fs::remove_file(&aside)?;
            return Ok(false);
        }
        fs::remove_file(&aside)?;
        Ok(true)
    }

    fn remove_leftovers(&self, before: SystemTime) -> io::Result<usize> {
        let mut removed = 0;
        for entry in entries(&self.root.join(TMP))? {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_file() && meta.modified()? < before && fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use super::*;

    fn key(byte: char) -> BlobKey {
        BlobKey::original(&byte.to_string().repeat(64)).unwrap()
    }

    fn put(store: &LocalStore, key: &BlobKey, bytes: &[u8]) {
        let mut f = store.temp_file().unwrap();
        f.write_all(bytes).unwrap();
        store.put(key, f).unwrap();
    }

    #[test]
    fn keys_are_hex_hashes_only() {
        assert!(BlobKey::original("../../etc/passwd").is_none());
        assert!(BlobKey::original(&"A".repeat(64)).is_none());
        assert!(BlobKey::original(&"a".repeat(63)).is_none());
        let store = LocalStore::new("/x");
        let k = BlobKey::thumbnail(&format!("abcd{}", "0".repeat(60))).unwrap();
        assert_eq!(
            store.path(&k),
            PathBuf::from(format!("/x/ab/cd/abcd{}.thumb.jpg", "0".repeat(60)))
        );
    }

    #[test]
    fn put_open_list_and_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("uploads"));
        let (a, b) = (key('a'), key('b'));
        assert!(store.open(&a).unwrap().is_none());
        assert!(store
            .list_written_before(SystemTime::now())
            .unwrap()
            .is_empty());
        put(&store, &a, b"one");
        put(&store, &a, b"one");
        put(&store, &b, b"two");
        assert!(store.exists(&a).unwrap());
        assert_eq!(
            fs::read(store.path(&a)).unwrap(),
            b"one",
            "the same name, stored once"
        );
        let later = SystemTime::now() + Duration::from_secs(1);
        let mut listed = store.list_written_before(later).unwrap();
        listed.sort_by(|x, y| x.sha256().cmp(y.sha256()));
        assert_eq!(listed, vec![a.clone(), b.clone()]);
        assert!(store
            .list_written_before(SystemTime::now() - Duration::from_secs(60))
            .unwrap()
            .is_empty());

        // Published after the sweep's cut-off: kept, and in place.
        let earlier = SystemTime::now() - Duration::from_secs(60);
        assert!(!store.remove_if_stale(&a, earlier).unwrap());
        assert_eq!(fs::read(store.path(&a)).unwrap(), b"one");
        // Before it: deleted; a missing blob is no error.
        assert!(store.remove_if_stale(&a, later).unwrap());
        assert!(!store.exists(&a).unwrap());
        assert!(!store.remove_if_stale(&a, later).unwrap());
        store.delete(&b).unwrap();
        store.delete(&b).unwrap();
        // Nothing is left aside.
        assert_eq!(store.remove_leftovers(later).unwrap(), 0);
    }

    #[test]
    fn dropped_temp_files_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let mut f = store.temp_file().unwrap();
        f.write_all(b"half").unwrap();
        let kept = store.temp_file().unwrap().into_temp_path().keep().unwrap();
        drop(f);
        assert!(store
            .list_written_before(SystemTime::now() + Duration::from_secs(1))
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .remove_leftovers(SystemTime::now() + Duration::from_secs(1))
                .unwrap(),
            1
        );
        assert!(!kept.exists());
    }
}
