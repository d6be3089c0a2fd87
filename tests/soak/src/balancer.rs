//! A TCP load balancer on 127.0.0.1 in front of the app's instances: each accepted connection
//! goes to the next instance (round robin) and is copied both ways until either side closes.
//! All instances share its origin as their public URL, as a real deployment behind one load
//! balancer does: the OAuth `redirect_uri`, the JS-SDK domain and the `notify_url` WeChat calls
//! are the same for all, and any instance may answer any request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running balancer; stopped on [`stop`](Self::stop) or drop.
#[derive(Debug)]
pub struct Balancer {
    addr: SocketAddr,
    counts: Arc<Vec<AtomicU64>>,
    accept: JoinHandle<()>,
}

impl Balancer {
    /// Forwards the connections `listener` accepts to `backends`, in turn.
    ///
    /// # Errors
    /// When the listener cannot be used by tokio.
    pub fn start(
        listener: std::net::TcpListener,
        backends: Vec<SocketAddr>,
    ) -> std::io::Result<Self> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = TcpListener::from_std(listener)?;
        let counts: Arc<Vec<AtomicU64>> =
            Arc::new(backends.iter().map(|_| AtomicU64::new(0)).collect());
        let next = Arc::new(AtomicUsize::new(0));
        let task_counts = Arc::clone(&counts);
        let accept = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let index = next.fetch_add(1, Ordering::Relaxed) % backends.len().max(1);
                let Some(&backend) = backends.get(index) else {
                    continue;
                };
                task_counts[index].fetch_add(1, Ordering::Relaxed);
                connections.spawn(forward(inbound, backend));
                // Reap the finished ones so the set does not grow with the run.
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Self {
            addr,
            counts,
            accept,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections forwarded so far, per backend.
    pub fn connections(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// Stops accepting and closes every forwarded connection.
    pub fn stop(self) {
        self.accept.abort();
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn forward(mut inbound: TcpStream, backend: SocketAddr) {
    let Ok(mut outbound) = TcpStream::connect(backend).await else {
        return; // the client sees the connection close, as behind a real balancer
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn connections_go_round_robin() {
        let mut backends = Vec::new();
        for reply in [b'a', b'b'] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            backends.push(listener.local_addr().unwrap());
            tokio::spawn(async move {
                while let Ok((mut s, _)) = listener.accept().await {
                    let _ = s.write_all(&[reply]).await;
                }
            });
        }
        let front = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let balancer = Balancer::start(front, backends).unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut s = TcpStream::connect(balancer.addr()).await.unwrap();
            let mut byte = [0u8];
            s.read_exact(&mut byte).await.unwrap();
            seen.push(byte[0]);
        }
        assert_eq!(seen, b"abab");
        assert_eq!(balancer.connections(), [2, 2]);
        balancer.stop();
    }
}
