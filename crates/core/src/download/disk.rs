//! Free space on the file system that holds a path.

use std::path::Path;

/// Bytes available to this user on the file system holding `dir` (which must exist).
pub fn available_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path contains a NUL byte"))?;
    #[allow(unsafe_code)]
    // SAFETY: statvfs writes only into the zeroed struct we own; the path is a valid C string.
    let (rc, st) = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c.as_ptr(), &mut st), st)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn temp_dir_has_some_space() {
        let t = tempfile::tempdir().unwrap();
        assert!(super::available_bytes(t.path()).unwrap() > 0);
        assert!(super::available_bytes(&t.path().join("missing")).is_err());
    }
}
