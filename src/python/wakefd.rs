//! The loop's doorbell: a non-blocking eventfd (a pipe elsewhere) that the socket task writes to
//! without the GIL, and that asyncio watches with `loop.add_reader`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::bridge::Notify;

pub struct WakeFd {
    read: OwnedFd,
    #[cfg(not(target_os = "linux"))]
    write: OwnedFd,
}

impl WakeFd {
    #[cfg(target_os = "linux")]
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd returns a fresh descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a valid descriptor we own.
        Ok(WakeFd {
            read: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new() -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        for fd in fds {
            // SAFETY: valid descriptors from pipe().
            unsafe {
                libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        // SAFETY: both descriptors are ours.
        unsafe {
            Ok(WakeFd {
                read: OwnedFd::from_raw_fd(fds[0]),
                write: OwnedFd::from_raw_fd(fds[1]),
            })
        }
    }

    pub fn fileno(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    fn write_fd(&self) -> RawFd {
        #[cfg(target_os = "linux")]
        return self.read.as_raw_fd();
        #[cfg(not(target_os = "linux"))]
        return self.write.as_raw_fd();
    }

    /// Empties the doorbell so that the reader callback fires once per ring.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reading into a local buffer of the given length.
            let n = unsafe { libc::read(self.fileno(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 || cfg!(target_os = "linux") {
                break;
            }
        }
    }
}

impl Notify for std::sync::Arc<WakeFd> {
    fn notify(&self) {
        let one: u64 = 1;
        // A full pipe or a saturated eventfd already means "ring": the error is fine to ignore.
        // SAFETY: writing 8 bytes from a local u64.
        unsafe {
            libc::write(
                self.write_fd(),
                (&one as *const u64).cast(),
                if cfg!(target_os = "linux") { 8 } else { 1 },
            );
        }
    }
}
