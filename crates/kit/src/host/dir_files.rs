//! Static files from a directory (native, and Spin, whose `files` mounts are WASI
//! preopens).

use crate::files::{check_path, Files, FilesError};
use crate::Bytes;

/// Files under a directory, read with `std::fs`: a folder on the machine natively, the
/// guest's `/` on Spin (where `spin.toml`'s `files` mounts are WASI preopens).
#[derive(Debug, Clone)]
pub struct DirFiles {
    root: std::path::PathBuf,
}

impl DirFiles {
    pub fn new(root: impl Into<std::path::PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

#[async_trait::async_trait(?Send)]
impl Files for DirFiles {
    async fn read(&self, path: &str) -> Result<Option<Bytes>, FilesError> {
        use std::io::ErrorKind;
        check_path(path)?;
        let full = self.root.join(path);
        match std::fs::read(&full) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::IsADirectory) => Ok(None),
            Err(e) => Err(FilesError::Unavailable(format!("{}: {e}", full.display()))),
        }
    }
}
