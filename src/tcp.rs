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
        /// A write when the reactor says the socket is writable, again after a false alarm.
        fn poll_write_with(
            &self,
            cx: &mut Context<'_>,
            mut write: impl FnMut(&std::net::TcpStream) -> io::Result<usize>,
        ) -> Poll<io::Result<usize>> {
            let io = self.io()?;
            loop {
                let mut guard = ready!(io.poll_write_ready(cx))?;
                if let Ok(result) = guard.try_io(|io| write(io.get_ref())) {
                    return Poll::Ready(result);
                }
            }
        }
    }

    /// Whether it emptied the socket: fewer bytes than asked for.
    fn recv(socket: &std::net::TcpStream, buf: &mut ReadBuf<'_>) -> io::Result<bool> {
        // SAFETY: the unfilled part is valid for writes of its length; recv writes at most that
        // many bytes and reports how many, which are then initialised.
        unsafe {
            let unfilled = buf.unfilled_mut();
            let n = libc::recv(
                socket.as_raw_fd(),
                unfilled.as_mut_ptr().cast(),
                unfilled.len(),
                libc::MSG_DONTWAIT,
            );
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            buf.assume_init(n as usize);
            buf.advance(n as usize);
            Ok(buf.remaining() > 0)
        }
    }

    impl AsyncRead for Tcp {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let io = this.io.as_ref().ok_or_else(lost_registration)?;
            if !this.reads {
                // The event loop's thread reads (`watch_reads(false)`), straight from the socket:
                // the reactor does not watch reads now. Pending without a waker: the loop reads
                // again when the socket is readable.
                if this.drained {
                    return Poll::Pending;
                }
                return match recv(io.get_ref(), buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
                    Ok(drained) => {
                        this.drained = drained;
                        Poll::Ready(Ok(()))
                    }
                    Err(e) => Poll::Ready(Err(e)),
                };
            }
            loop {
                let mut guard = ready!(io.poll_read_ready(cx))?;
                if let Ok(result) = guard.try_io(|io| recv(io.get_ref(), buf)) {
                    return Poll::Ready(result.map(drop));
                }
            }
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
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    pub struct Tcp(tokio::net::TcpStream);

    impl Tcp {
        pub async fn connect(host: &str, port: u16) -> io::Result<Tcp> {
            let stream = tokio::net::TcpStream::connect((host, port)).await?;
            stream.set_nodelay(true)?;
            Ok(Tcp(stream))
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
            Pin::new(&mut self.0).poll_read(cx, buf)
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
}
