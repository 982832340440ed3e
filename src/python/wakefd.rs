//! The loop's doorbell, rung by the socket task without the GIL.
//!
//! On Unix it is a non-blocking eventfd (a pipe elsewhere) that asyncio watches with
//! `loop.add_reader`. On Linux with `inbound_spin`, the loop watches instead an epoll descriptor
//! that holds the eventfd and the connection's socket, armed for one arrival each time the
//! consumer goes to sleep (bytes arriving then wake the loop at the same time as the socket task,
//! not after it). While the loop owns the reads (`loop_reads`), it watches the socket itself,
//! apart from the doorbell (`doorbell::LoopSide::watch`). A loop without `add_reader` (Windows'
//! Proactor loop) is woken instead by a helper thread that blocks in `wait()` and hands the ring
//! to the loop with `call_soon_threadsafe`; on Windows, where there is no descriptor to watch,
//! that is the only way and the doorbell is a condition variable.

#[cfg(not(unix))]
pub use portable::WakeFd;
#[cfg(unix)]
pub use unix::WakeFd;

#[cfg(unix)]
mod unix {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

    use crate::event_queue::Notify;

    pub struct WakeFd {
        read: OwnedFd,
        #[cfg(not(target_os = "linux"))]
        write: OwnedFd,
        /// With a socket watch: holds `read` (level-triggered, tag `RING`) and the watched
        /// socket (one-shot, tag `SOCKET`), and the loop watches this one instead of `read`.
        #[cfg(target_os = "linux")]
        epoll: Option<OwnedFd>,
        #[cfg(target_os = "linux")]
        watched: parking_lot::Mutex<Option<RawFd>>,
    }

    #[cfg(target_os = "linux")]
    const RING: u64 = 0;
    #[cfg(target_os = "linux")]
    const SOCKET: u64 = 1;

    #[cfg(target_os = "linux")]
    fn epoll_ctl(
        epoll: RawFd,
        op: libc::c_int,
        fd: RawFd,
        events: u32,
        tag: u64,
    ) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: tag };
        // SAFETY: a valid epoll descriptor and a local event.
        if unsafe { libc::epoll_ctl(epoll, op, fd, &mut event) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    impl WakeFd {
        /// `socket_watch`: the doorbell can also watch a socket (`watch`, `arm`); without it,
        /// the loop watches the bare eventfd, as cheap as before.
        #[cfg(target_os = "linux")]
        pub fn new(socket_watch: bool) -> io::Result<Self> {
            // SAFETY: eventfd returns a fresh descriptor or -1.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a valid descriptor we own.
            let read = unsafe { OwnedFd::from_raw_fd(fd) };
            let epoll = if socket_watch {
                // SAFETY: epoll_create1 returns a fresh descriptor or -1.
                let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
                if ep < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: `ep` is a valid descriptor we own.
                let epoll = unsafe { OwnedFd::from_raw_fd(ep) };
                epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32, RING)?;
                Some(epoll)
            } else {
                None
            };
            Ok(WakeFd {
                read,
                epoll,
                watched: parking_lot::Mutex::new(None),
            })
        }

        /// Watches `fd` (a connection's socket) for arriving bytes, instead of the one before.
        /// Called by the socket task while the socket is open: a descriptor is removed before
        /// it is closed, so a reused number is never confused with it.
        #[cfg(target_os = "linux")]
        pub fn watch(&self, fd: Option<RawFd>) {
            let Some(ep) = self.epoll.as_ref().map(AsRawFd::as_raw_fd) else {
                return;
            };
            let mut watched = self.watched.lock();
            if let Some(old) = watched.take() {
                let _ = epoll_ctl(ep, libc::EPOLL_CTL_DEL, old, 0, SOCKET);
            }
            if let Some(fd) = fd {
                let events = (libc::EPOLLIN | libc::EPOLLONESHOT) as u32;
                if epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, events, SOCKET).is_ok() {
                    *watched = Some(fd);
                }
            }
        }

        /// Arms the watched socket for one arrival (the consumer is about to sleep): one
        /// callback per sleep at most, none while the consumer is busy.
        #[cfg(target_os = "linux")]
        pub fn arm(&self) {
            let Some(ep) = self.epoll.as_ref().map(AsRawFd::as_raw_fd) else {
                return;
            };
            let watched = self.watched.lock();
            if let Some(fd) = *watched {
                let events = (libc::EPOLLIN | libc::EPOLLONESHOT) as u32;
                let _ = epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, events, SOCKET);
            }
        }

        #[cfg(not(target_os = "linux"))]
        pub fn arm(&self) {}

        #[cfg(not(target_os = "linux"))]
        pub fn new(_socket_watch: bool) -> io::Result<Self> {
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

        /// The descriptor for `loop.add_reader`.
        pub fn fileno(&self) -> Option<RawFd> {
            #[cfg(target_os = "linux")]
            return Some(self.epoll.as_ref().unwrap_or(&self.read).as_raw_fd());
            #[cfg(not(target_os = "linux"))]
            return Some(self.read.as_raw_fd());
        }

        fn write_fd(&self) -> RawFd {
            #[cfg(target_os = "linux")]
            return self.read.as_raw_fd();
            #[cfg(not(target_os = "linux"))]
            return self.write.as_raw_fd();
        }

        /// Empties the doorbell so that the reader callback fires once per ring (and once per
        /// arrival on the watched socket). Returns whether it rang, and whether bytes arrived on
        /// the socket.
        pub fn drain(&self) -> (bool, bool) {
            #[cfg(target_os = "linux")]
            if let Some(ep) = &self.epoll {
                // Which of the two is ready: the eventfd is read only when it rang.
                let mut events = [libc::epoll_event { events: 0, u64: 0 }; 2];
                // SAFETY: a valid epoll descriptor and a local buffer of the given length.
                let n = unsafe { libc::epoll_wait(ep.as_raw_fd(), events.as_mut_ptr(), 2, 0) };
                let ready = &events[..n.max(0) as usize];
                let arrived = ready.iter().any(|e| e.u64 == SOCKET);
                let rang = ready.iter().any(|e| e.u64 == RING) && self.read_ring();
                return (rang, arrived);
            }
            (self.read_ring(), false)
        }

        /// Empties the eventfd (the pipe); whether it had rung.
        fn read_ring(&self) -> bool {
            let mut buf = [0u8; 64];
            let mut rang = false;
            loop {
                // SAFETY: reading into a local buffer of the given length.
                let n = unsafe {
                    libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                };
                rang |= n > 0;
                if n <= 0 || cfg!(target_os = "linux") {
                    break;
                }
            }
            rang
        }

        /// Blocks until the doorbell rings (then empties it and returns true) or `timeout`
        /// passes (false): the helper thread's side.
        pub fn wait_timeout(&self, timeout: std::time::Duration) -> bool {
            let mut pfd = libc::pollfd {
                fd: self.read.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
            let rung = loop {
                // SAFETY: one valid pollfd.
                let n = unsafe { libc::poll(&mut pfd, 1, ms) };
                if n >= 0 {
                    break n > 0;
                }
                if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    break true;
                }
            };
            if rung {
                let _ = self.drain();
            }
            rung
        }
    }

    impl Notify for std::sync::Arc<WakeFd> {
        #[cfg(target_os = "linux")]
        fn watch_socket(&self, fd: Option<i32>) {
            self.watch(fd);
        }

        fn notify(&self) {
            let one: u64 = 1;
            // A full pipe or a saturated eventfd already means "ring": the error is fine to
            // ignore.
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
}

#[cfg(not(unix))]
mod portable {
    use std::io;

    use parking_lot::{Condvar, Mutex};

    use crate::event_queue::Notify;

    pub struct WakeFd {
        rung: Mutex<bool>,
        bell: Condvar,
    }

    impl WakeFd {
        pub fn new(_socket_watch: bool) -> io::Result<Self> {
            Ok(WakeFd {
                rung: Mutex::new(false),
                bell: Condvar::new(),
            })
        }

        /// No descriptor here: the loop is always woken through the helper thread.
        pub fn fileno(&self) -> Option<i32> {
            None
        }

        pub fn drain(&self) -> (bool, bool) {
            (std::mem::replace(&mut *self.rung.lock(), false), false)
        }

        pub fn arm(&self) {}

        pub fn wait_timeout(&self, timeout: std::time::Duration) -> bool {
            let mut rung = self.rung.lock();
            if !*rung {
                self.bell.wait_for(&mut rung, timeout);
            }
            std::mem::replace(&mut *rung, false)
        }
    }

    impl Notify for std::sync::Arc<WakeFd> {
        fn notify(&self) {
            *self.rung.lock() = true;
            self.bell.notify_one();
        }
    }
}
