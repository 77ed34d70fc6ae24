//! A TCP gate between code under test and a server: open, it forwards every connection; cut, it
//! ends the connections it carries and refuses new ones, as a server that went away does. For
//! tests of what a client does while its server is unreachable, without stopping the server that
//! other parts of the test still use.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A gate in front of `target`; see the module docs. Dropping it stops it.
pub struct Gate {
    addr: SocketAddr,
    open: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Gate {
    /// Listens on a free port of 127.0.0.1 and forwards to `target`, open.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (open, watching) = watch::channel(true);
        let task = tokio::spawn(accept(listener, target, watching));
        Ok(Self { addr, open, task })
    }

    /// Where clients connect instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Ends every connection through the gate and refuses new ones until [`Gate::open`].
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Forwards new connections again.
    pub fn open(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, target: SocketAddr, open: watch::Receiver<bool>) {
    while let Ok((client, _)) = listener.accept().await {
        // Cut: the connection is dropped at once, which the client reads as a reset or EOF.
        if !*open.borrow() {
            continue;
        }
        let mut open = open.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(target).await else {
                return;
            };
            let (mut client, mut server) = (client, server);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = open.wait_for(|open| !*open) => {}
            }
        });
    }
}
