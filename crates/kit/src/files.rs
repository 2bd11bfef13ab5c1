//! Static files a deployment ships beside its code — the `/docs` page's Swagger UI
//! files — read through the host instead of being compiled into the wasm.
//!
//! A path is `/`-separated and relative to the host's file root, `docs/swagger-ui.css`:
//! on Spin the root is the guest's `/` (`spin.toml`'s `files` mounts, WASI preopens,
//! read with `std::fs`, [`DirFiles`](crate::host::DirFiles)); natively a directory on the machine
//! ([`DirFiles`](crate::host::DirFiles)); on Workers the static assets behind the `ASSETS` binding
//! (`kit::host::workers::WorkerAssets`). Every implementation refuses a path that
//! [`check_path`] refuses before touching anything.

use crate::Bytes;

/// Why a static file could not be read (a file that is not there is `Ok(None)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilesError {
    /// Not a plain relative path: empty segments, `.`/`..`, backslashes, other bytes.
    #[error("invalid static file path {0:?}")]
    InvalidPath(String),
    /// The host could not read it: no file store bound, an I/O error.
    #[error("static files unavailable: {0}")]
    Unavailable(String),
}

/// Read-only static files of the deployment.
#[async_trait::async_trait(?Send)]
pub trait Files {
    /// The whole file at `path` (relative to the host's file root), or `None` when
    /// there is no such file.
    async fn read(&self, path: &str) -> Result<Option<Bytes>, FilesError>;
}

/// A file the deployment must ship (`what` names it for the error): a file that is not
/// there means the deployment was made without its static files, a server fault, so
/// both absence and a read error are a 500 `internal` saying which file and why.
pub async fn shipped(env: &crate::Env, path: &str, what: &str) -> Result<Bytes, crate::ApiError> {
    match env.files.read(path).await {
        Ok(Some(body)) => Ok(body),
        Ok(None) => Err(crate::ApiError::internal(format_args!(
            "{what} {path} is missing from this deployment's static files \
             (build them with scripts/docs-assets.sh, into build/docs-assets)"
        ))),
        Err(e) => Err(crate::ApiError::internal(format_args!(
            "{what} {path} could not be read ({e})"
        ))),
    }
}

/// For hosts and tests that ship no static files: every file is absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFiles;

#[async_trait::async_trait(?Send)]
impl Files for NoFiles {
    async fn read(&self, path: &str) -> Result<Option<Bytes>, FilesError> {
        check_path(path)?;
        Ok(None)
    }
}

/// Accepts only a relative path of non-empty segments made of ASCII letters, digits,
/// `.`, `-` and `_`, none of them `.` or `..`: nothing that could leave the file root
/// (traversal, absolute paths, backslashes, drive letters) or need escaping in a URL.
pub fn check_path(path: &str) -> Result<(), FilesError> {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    if path.split('/').all(segment_ok) {
        Ok(())
    } else {
        Err(FilesError::InvalidPath(path.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn only_plain_relative_paths_pass() {
        for ok in [
            "docs/swagger-ui.css",
            "a",
            "a/b/c.d",
            "favicon-16x16.png",
            "x_y",
        ] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/",
            "/etc/passwd",
            "docs/",
            "docs//x",
            "./docs",
            "docs/./x",
            "..",
            "docs/../../Cargo.toml",
            "docs\\..\\x",
            "c:x",
            "docs/x y",
            "docs/%2e%2e",
            "docs/x?y",
            "docs/\u{0}",
            "docs/é",
        ] {
            assert_eq!(
                check_path(bad),
                Err(FilesError::InvalidPath(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn dir_files_read_inside_their_root_only() {
        let root = std::env::temp_dir().join(format!("kit-files-{}", std::process::id()));
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::write(root.join("docs/a.txt"), b"hello").unwrap();
        let files = crate::host::DirFiles::new(root.join("docs"));
        assert_eq!(
            block_on(files.read("a.txt")).unwrap(),
            Some(Bytes::from_static(b"hello"))
        );
        assert_eq!(block_on(files.read("missing.txt")).unwrap(), None);
        // A directory is not a file.
        let whole = crate::host::DirFiles::new(&root);
        assert_eq!(block_on(whole.read("docs")).unwrap(), None);
        assert!(matches!(
            block_on(files.read("../docs/a.txt")),
            Err(FilesError::InvalidPath(_))
        ));
        assert_eq!(block_on(NoFiles.read("docs/a.txt")).unwrap(), None);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
