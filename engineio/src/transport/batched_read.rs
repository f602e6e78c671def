//! A read side that takes whatever the socket has in one system call.
//!
//! tungstenite asks the socket for the rest of the frame it is decoding (its
//! buffer is sized to that frame), so a client that sends a hundred small
//! frames at once costs a hundred `recvfrom` calls. [`BatchedRead`] reads up
//! to [`CHUNK`] bytes into a per-thread scratch buffer instead, hands the
//! caller what it asked for, and keeps the rest for the next reads in a
//! buffer of exactly that size, freed once drained: an idle connection holds
//! no read buffer here at all. [`BatchedRead::read_batch`] appends a whole
//! batch to the caller's buffer instead (the WebSocket frame reader).

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most read from the socket at once.
pub(crate) const CHUNK: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; CHUNK]);
}

/// `S` with batched reads; writes pass through.
#[derive(Debug)]
pub(crate) struct BatchedRead<S> {
    inner: S,
    /// Bytes read but not yet taken; empty (no allocation) when drained.
    left: Vec<u8>,
    pos: usize,
}

impl<S> BatchedRead<S> {
    pub(crate) fn new(inner: S) -> Self {
        BatchedRead {
            inner,
            left: Vec::new(),
            pos: 0,
        }
    }

    /// Appends what the socket has (one read of up to [`CHUNK`] bytes,
    /// through the per-thread scratch buffer) to `out`, which grows by
    /// exactly that: a caller that keeps `out` empty between frames holds no
    /// buffer while it waits. `Ok(0)` at EOF.
    pub(crate) async fn read_batch(&mut self, out: &mut bytes::BytesMut) -> io::Result<usize>
    where
        S: AsyncRead + Unpin,
    {
        std::future::poll_fn(|cx| {
            if self.pos < self.left.len() {
                let rest = self.left.get(self.pos..).unwrap_or_default();
                out.extend_from_slice(rest);
                let n = rest.len();
                self.left = Vec::new();
                self.pos = 0;
                return Poll::Ready(Ok(n));
            }
            SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let mut buf = ReadBuf::new(&mut scratch[..]);
                match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) => {
                        out.extend_from_slice(buf.filled());
                        Poll::Ready(Ok(buf.filled().len()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            })
        })
        .await
    }

    /// Bytes held, not yet read by the caller.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.left.len() - self.pos
    }

    fn take_left(&mut self, out: &mut ReadBuf<'_>) {
        let rest = self.left.get(self.pos..).unwrap_or_default();
        let n = rest.len().min(out.remaining());
        out.put_slice(rest.get(..n).unwrap_or_default());
        self.pos += n;
        if self.pos >= self.left.len() {
            self.left = Vec::new();
            self.pos = 0;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for BatchedRead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.left.len() {
            this.take_left(out);
            return Poll::Ready(Ok(()));
        }
        if out.remaining() >= CHUNK {
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut buf = ReadBuf::new(&mut scratch[..]);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => {
                    let got = buf.filled();
                    let n = got.len().min(out.remaining());
                    out.put_slice(got.get(..n).unwrap_or_default());
                    if let Some(rest) = got.get(n..).filter(|r| !r.is_empty()) {
                        this.left = rest.to_vec();
                        this.pos = 0;
                    }
                    Poll::Ready(Ok(()))
                }
                other => other,
            }
        })
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for BatchedRead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn small_reads_are_served_from_one_batch_then_freed() {
        let (mut a, b) = tokio::io::duplex(64 * 1024);
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        a.write_all(&data).await.unwrap();
        let mut r = BatchedRead::new(b);
        let mut got = Vec::new();
        let mut small = [0u8; 100];
        // The first small read takes all 5000 bytes from the pipe at once.
        let n = r.read(&mut small).await.unwrap();
        got.extend_from_slice(&small[..n]);
        assert_eq!(n, 100);
        assert_eq!(r.held(), 4900);
        while got.len() < data.len() {
            let n = r.read(&mut small).await.unwrap();
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, data);
        assert_eq!(r.held(), 0);
        assert_eq!(r.left.capacity(), 0, "drained buffer is freed");
        // End of stream passes through.
        drop(a);
        assert_eq!(r.read(&mut small).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn large_reads_go_straight_through_and_writes_pass() {
        let (mut a, b) = tokio::io::duplex(64 * 1024);
        let mut r = BatchedRead::new(b);
        a.write_all(&[7u8; 3000]).await.unwrap();
        let mut big = vec![0u8; CHUNK];
        let n = r.read(&mut big).await.unwrap();
        assert_eq!(n, 3000);
        assert_eq!(r.held(), 0);
        r.write_all(b"pong").await.unwrap();
        let mut back = [0u8; 4];
        a.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"pong");
    }
}
