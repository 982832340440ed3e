//! The connection's TCP socket, registered with tokio's reactor for reads only while the socket
//! task reads it. While the event loop's thread owns the reads (`Config::loop_reads`), the
//! socket is registered for writes alone: an arriving frame then wakes the loop's thread and not
//! the socket thread too (tokio's registration is edge-triggered, so every frame would wake it),
//! and the loop watches a duplicate of the descriptor (`lend`) with its own selector.

#[cfg(not(unix))]
pub use portable::{Lent, Tcp};
#[cfg(unix)]
pub use unix::Tcp;
/// A duplicate of the socket's descriptor, lent to the event loop (`Tcp::lend`).
#[cfg(unix)]
pub type Lent = std::os::fd::OwnedFd;

/// The number of a lent descriptor, for the event loop's `add_reader`.
#[cfg(unix)]
pub fn lent_number(lent: &Lent) -> i32 {
    use std::os::fd::AsRawFd;
    lent.as_raw_fd()
}

#[cfg(not(unix))]
pub fn lent_number(lent: &Lent) -> i32 {
    match *lent {}
}

/// What tungstenite asks of the stream per read (its `read_buffer_size`). Before each read it
/// zeroes that much of its buffer: 128 KiB by default, which cost more than the rest of a tick's
/// read and parse (memset was three quarters of the loop thread's instructions per tick, under
/// callgrind). Small asks are cheap because `ReadAhead` serves them. 1 KiB holds a tick or an ack:
/// a tick takes two reads (the frame, then the empty socket), and 4 KiB asks zeroed 16 KiB per
/// tick and its ack, 7 % of the loop's instructions; a flood's frames cost the same either way
/// (docs/BENCHMARKS_RESULTS.md).
pub const FRAME_READ: usize = 1024;

/// How much one `recv` may take from the socket.
const READ_AHEAD: usize = 128 * 1024;

/// The bytes of the last `recv` not yet read: one system call takes what the socket holds, and
/// tungstenite's small reads (`FRAME_READ`) are copies from here. Zeroed once, at the connect.
struct ReadAhead {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl ReadAhead {
    fn new() -> Self {
        ReadAhead {
            buf: vec![0; READ_AHEAD].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Copies what is buffered into `out`; false when nothing is.
    fn take(&mut self, out: &mut tokio::io::ReadBuf<'_>) -> bool {
        if self.start == self.end {
            return false;
        }
        let n = out.remaining().min(self.end - self.start);
        out.put_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        true
    }

    /// `n` bytes were read into `buf`: copies what `out` takes of them (none when `n` is 0, at
    /// the end of the stream).
    fn filled(&mut self, n: usize, out: &mut tokio::io::ReadBuf<'_>) {
        self.start = 0;
        self.end = n;
        self.take(out);
    }
}

#[cfg(unix)]
mod unix {
    use std::io::{self, Write};
    use std::net::Shutdown;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::pin::Pin;
    use std::task::{ready, Context, Poll};

    use tokio::io::unix::AsyncFd;
    use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
    use tokio::runtime::Handle;

    use super::ReadAhead;

    pub struct Tcp {
        /// None only after a registration failed (`watch_reads`): every later call then fails.
        io: Option<AsyncFd<std::net::TcpStream>>,
        /// The reactor watches reads (the socket task reads); false while the event loop's
        /// thread owns them (`watch_reads`).
        reads: bool,
        /// The runtime whose reactor watches the socket: a registration made on the loop's thread
        /// goes to it too.
        runtime: Handle,
        /// While the loop reads: the last read found the socket emptied (it returned fewer bytes
        /// than asked), so the next one returns `Pending` without asking the kernel again, until
        /// `expect_bytes`. The loop's selector watches the socket level-triggered: bytes that
        /// come after the short read call the loop back.
        drained: bool,
        /// A duplicate of the descriptor was lent (`lend`): dropping this one alone would not
        /// close the connection.
        lent: bool,
        ahead: ReadAhead,
        /// `recv` calls made (tests count the system calls of a read).
        pub(super) recvs: u64,
    }

    /// On failure, the stream is shut down before it goes: a lent duplicate (`lend`) would
    /// otherwise keep the connection open.
    fn register(
        std: std::net::TcpStream,
        interest: Interest,
    ) -> io::Result<AsyncFd<std::net::TcpStream>> {
        // SAFETY: the descriptor is the stream's own, open for as long as the stream, which the
        // AsyncFd owns and gives back only by `into_inner`.
        unsafe { AsyncFd::register_with_interest(std, interest) }.map_err(|e| {
            let (std, e) = e.into_parts();
            let _ = std.shutdown(Shutdown::Both);
            e
        })
    }

    fn lost_registration() -> io::Error {
        io::Error::other("the socket lost its registration with the reactor")
    }

    impl Tcp {
        /// Connects with TCP_NODELAY; must be called in a tokio runtime.
        pub async fn connect(host: &str, port: u16) -> io::Result<Tcp> {
            let stream = tokio::net::TcpStream::connect((host, port)).await?;
            stream.set_nodelay(true)?;
            // Non-blocking already, as tokio left it.
            let std = stream.into_std()?;
            Ok(Tcp {
                io: Some(register(std, Interest::READABLE | Interest::WRITABLE)?),
                reads: true,
                runtime: Handle::current(),
                drained: false,
                lent: false,
                ahead: ReadAhead::new(),
                recvs: 0,
            })
        }

        fn io(&self) -> io::Result<&AsyncFd<std::net::TcpStream>> {
            self.io.as_ref().ok_or_else(lost_registration)
        }

        pub fn raw_fd(&self) -> Option<i32> {
            self.io.as_ref().map(|io| io.get_ref().as_raw_fd())
        }

        /// A duplicate of the descriptor, for the event loop to watch while it owns the reads.
        /// The loop's selector knows a descriptor by its number: a duplicate that the loop closes
        /// itself, after it stops watching, is a number no other socket can be given meanwhile.
        pub fn lend(&mut self) -> io::Result<OwnedFd> {
            let fd = self.raw_fd().ok_or_else(lost_registration)?;
            // SAFETY: `fd` is open (the stream owns it); F_DUPFD_CLOEXEC returns a new descriptor
            // or -1.
            let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
            if dup < 0 {
                return Err(io::Error::last_os_error());
            }
            self.lent = true;
            // SAFETY: a fresh descriptor, ours alone.
            Ok(unsafe { OwnedFd::from_raw_fd(dup) })
        }

        /// The loop is about to read: the socket may have bytes again.
        pub fn expect_bytes(&mut self) {
            self.drained = false;
        }

        /// Registers the socket for reads and writes, or for writes alone. Whoever waits on the
        /// socket must be woken afterwards: the old registration's wakers are dropped with it.
        pub fn watch_reads(&mut self, on: bool) -> io::Result<()> {
            if on == self.reads {
                return Ok(());
            }
            let std = self.io.take().ok_or_else(lost_registration)?.into_inner();
            let interest = if on {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::WRITABLE
            };
            let _context = self.runtime.enter();
            let io = register(std, interest)?;
            self.io = Some(io);
            self.reads = on;
            Ok(())
        }
    }

    impl Tcp {
        /// A write at once, and when the socket is full, again when the reactor says it is
        /// writable. At once: a registration made when the reads change hands is not writable
        /// to the reactor until its thread has polled it, which on a busy machine is later, and
        /// a direct write would leave its order to the socket task.
        fn poll_write_with(
            &self,
            cx: &mut Context<'_>,
            mut write: impl FnMut(&std::net::TcpStream) -> io::Result<usize>,
        ) -> Poll<io::Result<usize>> {
            let io = self.io()?;
            match write(io.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
            loop {
                let mut guard = ready!(io.poll_write_ready(cx))?;
                if let Ok(result) = guard.try_io(|io| write(io.get_ref())) {
                    return Poll::Ready(result);
                }
            }
        }
    }

    fn recv(socket: &std::net::TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of its length, and recv writes at most that many.
        let n = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    impl AsyncRead for Tcp {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if this.ahead.take(buf) {
                return Poll::Ready(Ok(()));
            }
            let io = this.io.as_ref().ok_or_else(lost_registration)?;
            let n = if !this.reads {
                // The event loop's thread reads (`watch_reads(false)`), straight from the socket:
                // the reactor does not watch reads now. Pending without a waker: the loop reads
                // again when the socket is readable.
                if this.drained {
                    return Poll::Pending;
                }
                this.recvs += 1;
                match recv(io.get_ref(), &mut this.ahead.buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                    Err(e) => return Poll::Ready(Err(e)),
                    Ok(n) => {
                        // Fewer bytes than asked: the socket is empty.
                        this.drained = n < this.ahead.buf.len();
                        n
                    }
                }
            } else {
                loop {
                    let mut guard = ready!(io.poll_read_ready(cx))?;
                    this.recvs += 1;
                    if let Ok(result) = guard.try_io(|io| recv(io.get_ref(), &mut this.ahead.buf)) {
                        break result?;
                    }
                }
            };
            this.ahead.filled(n, buf);
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Tcp {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_with(cx, |mut socket| socket.write(buf))
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_with(cx, |mut socket| socket.write_vectored(bufs))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(self.io()?.get_ref().shutdown(Shutdown::Write))
        }
    }

    impl Drop for Tcp {
        /// The connection ends here even while the loop still holds a lent duplicate (it closes
        /// that when it next looks): the peer sees the end now.
        fn drop(&mut self) {
            if let (true, Some(io)) = (self.lent, &self.io) {
                let _ = io.get_ref().shutdown(Shutdown::Both);
            }
        }
    }
}

/// Elsewhere the event loop never owns the reads: tokio's stream, as it is.
#[cfg(not(unix))]
mod portable {
    use std::io;
    use std::pin::Pin;
    use std::task::{ready, Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    use super::ReadAhead;

    pub struct Tcp(tokio::net::TcpStream, ReadAhead);

    impl Tcp {
        pub async fn connect(host: &str, port: u16) -> io::Result<Tcp> {
            let stream = tokio::net::TcpStream::connect((host, port)).await?;
            stream.set_nodelay(true)?;
            Ok(Tcp(stream, ReadAhead::new()))
        }

        pub fn raw_fd(&self) -> Option<i32> {
            None
        }

        pub fn watch_reads(&mut self, _on: bool) -> io::Result<()> {
            Ok(())
        }

        pub fn expect_bytes(&mut self) {}

        pub fn lend(&mut self) -> io::Result<Lent> {
            Err(io::ErrorKind::Unsupported.into())
        }
    }

    /// Never made: there is no descriptor to lend.
    pub enum Lent {}

    impl AsyncRead for Tcp {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let Tcp(stream, ahead) = &mut *self;
            if ahead.take(buf) {
                return Poll::Ready(Ok(()));
            }
            let mut into = ReadBuf::new(&mut ahead.buf);
            ready!(Pin::new(stream).poll_read(cx, &mut into))?;
            let n = into.filled().len();
            ahead.filled(n, buf);
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Tcp {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
        }

        fn is_write_vectored(&self) -> bool {
            self.0.is_write_vectored()
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use tokio::io::{AsyncRead, ReadBuf};

    use super::Tcp;

    async fn pair() -> (Tcp, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let tcp = Tcp::connect("127.0.0.1", port).await.unwrap();
        let (peer, _) = listener.accept().unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (tcp, peer)
    }

    fn read_now(tcp: &mut Tcp, buf: &mut [u8]) -> Poll<usize> {
        let mut buf = ReadBuf::new(buf);
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(tcp).poll_read(&mut cx, &mut buf) {
            Poll::Ready(r) => {
                r.unwrap();
                Poll::Ready(buf.filled().len())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Until a socket is readable again (the peer's bytes crossed the loopback).
    fn readable(tcp: &Tcp) {
        let mut pfd = libc::pollfd {
            fd: tcp.raw_fd().unwrap(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd on the stack.
        assert_eq!(unsafe { libc::poll(&mut pfd, 1, 5000) }, 1);
    }

    #[tokio::test]
    async fn a_short_read_ends_the_pass_until_bytes_are_expected_again() {
        let (mut tcp, mut peer) = pair().await;
        tcp.watch_reads(false).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(read_now(&mut tcp, &mut buf), Poll::Pending);
        peer.write_all(b"0123456789").unwrap();
        readable(&tcp);
        tcp.expect_bytes();
        // Fewer bytes than asked: the socket is empty, and the next read does not ask the
        // kernel, although more bytes have come meanwhile.
        assert_eq!(read_now(&mut tcp, &mut buf), Poll::Ready(10));
        peer.write_all(b"abcde").unwrap();
        readable(&tcp);
        assert_eq!(read_now(&mut tcp, &mut buf), Poll::Pending);
        tcp.expect_bytes();
        assert_eq!(read_now(&mut tcp, &mut buf), Poll::Ready(5));
        // A full read says nothing of what is left: the next one asks.
        peer.write_all(&[7; 100]).unwrap();
        readable(&tcp);
        tcp.expect_bytes();
        assert_eq!(read_now(&mut tcp, &mut buf), Poll::Ready(64));
        assert_eq!(read_now(&mut tcp, &mut buf), Poll::Ready(36));
    }

    #[tokio::test]
    async fn small_reads_are_served_from_one_system_call() {
        let (mut tcp, mut peer) = pair().await;
        tcp.watch_reads(false).unwrap();
        let sent: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        peer.write_all(&sent).unwrap();
        readable(&tcp);
        let mut got = Vec::new();
        let mut buf = [0u8; 100];
        while let Poll::Ready(n) = read_now(&mut tcp, &mut buf) {
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, sent);
        // One `recv` took what the socket held; the reads of 100 bytes were served from it.
        assert_eq!(tcp.recvs, 1);
    }

    #[tokio::test]
    async fn a_lent_descriptor_outlives_the_socket_which_still_ends_the_connection() {
        let (mut tcp, mut peer) = pair().await;
        let lent = tcp.lend().unwrap();
        assert_ne!(Some(lent.as_raw_fd()), tcp.raw_fd());
        drop(tcp);
        // The number stays the loop's until it closes it: no other socket can be given it.
        // SAFETY: F_GETFD on a descriptor we own.
        assert!(unsafe { libc::fcntl(lent.as_raw_fd(), libc::F_GETFD) } >= 0);
        // And the peer sees the end now, not when the loop lets go of its duplicate.
        let mut buf = [0u8; 8];
        assert_eq!(peer.read(&mut buf).unwrap(), 0);
        drop(lent);
    }

    fn write_now(tcp: &mut Tcp, bytes: &[u8]) -> Poll<usize> {
        let mut cx = Context::from_waker(Waker::noop());
        match tokio::io::AsyncWrite::poll_write(Pin::new(tcp), &mut cx, bytes) {
            Poll::Ready(r) => Poll::Ready(r.unwrap()),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The reads change hands (a new registration with the reactor) whenever the loop claims
    /// them or the task takes them back, and a direct write often comes right after: it must go
    /// out then, not wait for the reactor to report the new registration writable (on a busy
    /// machine its thread runs later, and the order would wait for the socket task).
    #[tokio::test(flavor = "current_thread")]
    async fn a_write_right_after_the_reads_change_hands_goes_out_at_once() {
        let (mut tcp, mut peer) = pair().await;
        for on in [false, true, false] {
            tcp.watch_reads(on).unwrap();
            // No await since: the reactor has not polled the new registration.
            assert_eq!(write_now(&mut tcp, b"order"), Poll::Ready(5), "reads: {on}");
            let mut buf = [0u8; 5];
            peer.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"order");
        }
    }
}
