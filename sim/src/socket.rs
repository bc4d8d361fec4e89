//! The runtime's socket traits over simulated pipes: listener, sink and stream, and the
//! `commonware_runtime::Network` of one node.
//!
//! Unlike the runtime's own sockets, a cancelled `recv` or `send` loses nothing here: bytes
//! move only when a call completes. Code above must not rely on it (TCP sockets do not
//! promise it).

use crate::{
    network::{Accepted, NodeNetwork, Refusal, Runtime, Shared, lock},
    pipe::{Ends, Pipe},
};
use commonware_runtime::{Clock, Error, IoBuf, IoBufs};
use futures::{
    FutureExt as _, StreamExt as _,
    channel::mpsc,
    future::{poll_fn, select},
};
use rand_core::CryptoRng;
use std::{
    collections::VecDeque,
    net::{IpAddr, SocketAddr},
    pin::pin,
    sync::{Arc, Mutex},
    task::Poll,
};

/// One direction of one connection, as one end sees it.
pub(crate) struct Half {
    pub(crate) shared: Shared,
    pub(crate) connection: u64,
    pub(crate) pipe: Arc<Mutex<Pipe>>,
    /// The node that writes into the pipe.
    pub(crate) from: IpAddr,
    /// The node that reads from it.
    pub(crate) to: IpAddr,
}

impl Half {
    fn close(&self, end: Ends) {
        lock(&self.pipe).end(end);
        lock(&self.shared).release(self.connection);
    }
}

/// A write on its way into the network.
pub(crate) struct Outgoing<'a> {
    pub(crate) connection: u64,
    pub(crate) pipe: &'a Mutex<Pipe>,
    pub(crate) from: IpAddr,
    pub(crate) to: IpAddr,
    pub(crate) bytes: IoBuf,
}

/// The writing end of a simulated connection.
pub struct Sink {
    half: Half,
    context: Box<dyn Draw>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").finish_non_exhaustive()
    }
}

/// The clock and randomness a sink or stream draws on, without the runtime's type.
trait Draw: Send + Sync {
    fn now(&self) -> std::time::SystemTime;
    fn random(&mut self) -> u64;
    fn sleep_until(
        &self,
        deadline: std::time::SystemTime,
    ) -> futures::future::BoxFuture<'static, ()>;
}

impl<E: Clock + CryptoRng + Send + 'static> Draw for Runtime<E> {
    fn now(&self) -> std::time::SystemTime {
        lock(self).current()
    }

    fn random(&mut self) -> u64 {
        lock(self).next_u64()
    }

    fn sleep_until(
        &self,
        deadline: std::time::SystemTime,
    ) -> futures::future::BoxFuture<'static, ()> {
        lock(self).sleep_until(deadline).boxed()
    }
}

impl Sink {
    pub(crate) fn new<E: Clock + CryptoRng + Send + 'static>(
        half: Half,
        context: Runtime<E>,
    ) -> Self {
        Self {
            half,
            context: Box::new(context),
        }
    }
}

impl commonware_runtime::Sink for Sink {
    async fn send(&mut self, bufs: impl Into<IoBufs> + Send) -> Result<(), Error> {
        // Wait for room in the window, like a full socket buffer.
        poll_fn(|cx| {
            let mut pipe = lock(&self.half.pipe);
            match pipe.ends() {
                Ends::Open if pipe.has_room() => Poll::Ready(Ok(())),
                Ends::Open => {
                    pipe.wait_to_write(cx.waker());
                    Poll::Pending
                }
                _ => Poll::Ready(Err(Error::SendFailed)),
            }
        })
        .await?;
        let bytes = bufs.into().coalesce();
        if bytes.is_empty() {
            return Ok(());
        }
        let random = self.context.random();
        let now = self.context.now();
        let outgoing = Outgoing {
            connection: self.half.connection,
            pipe: &self.half.pipe,
            from: self.half.from,
            to: self.half.to,
            bytes,
        };
        if lock(&self.half.shared).write(outgoing, random, now) {
            Ok(())
        } else {
            Err(Error::SendFailed)
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.half.close(Ends::WriterClosed);
    }
}

/// The reading end of a simulated connection.
pub struct Stream {
    half: Half,
    clock: Box<dyn Draw>,
    /// Bytes that arrived and were not read yet.
    arrived: VecDeque<IoBuf>,
    arrived_bytes: usize,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("arrived_bytes", &self.arrived_bytes)
            .finish_non_exhaustive()
    }
}

impl Stream {
    pub(crate) fn new<E: Clock + CryptoRng + Send + 'static>(
        half: Half,
        clock: Runtime<E>,
    ) -> Self {
        Self {
            half,
            clock: Box::new(clock),
            arrived: VecDeque::new(),
            arrived_bytes: 0,
        }
    }

    /// Takes `len` arrived bytes (there are at least that many).
    fn take(&mut self, len: usize) -> IoBufs {
        let mut parts = Vec::new();
        let mut wanted = len;
        while wanted > 0 {
            let front = self.arrived.front_mut().expect("enough bytes arrived");
            if front.len() <= wanted {
                wanted -= front.len();
                parts.push(self.arrived.pop_front().expect("front exists"));
            } else {
                parts.push(front.slice(..wanted));
                *front = front.slice(wanted..);
                wanted = 0;
            }
        }
        self.arrived_bytes -= len;
        if parts.len() == 1 {
            IoBufs::from(parts.pop().expect("one part"))
        } else {
            IoBufs::from(parts)
        }
    }
}

/// What a reader does next.
enum Next {
    Take,
    SleepUntil(std::time::SystemTime),
    Wait,
}

impl commonware_runtime::Stream for Stream {
    async fn recv(&mut self, len: usize) -> Result<IoBufs, Error> {
        loop {
            let next = if self.arrived_bytes >= len {
                Next::Take
            } else {
                let mut pipe = lock(&self.half.pipe);
                self.arrived_bytes += pipe.take_due(self.clock.now(), &mut self.arrived);
                if self.arrived_bytes >= len {
                    Next::Take
                } else {
                    match (pipe.ends(), pipe.next_due()) {
                        (Ends::Reset | Ends::ReaderClosed, _) | (Ends::WriterClosed, None) => {
                            return Err(Error::RecvFailed);
                        }
                        (_, Some(due)) => Next::SleepUntil(due),
                        (_, None) => Next::Wait,
                    }
                }
            };
            match next {
                Next::Take => return Ok(self.take(len)),
                Next::SleepUntil(due) => {
                    // Also wake for a reset while waiting.
                    let sleep = self.clock.sleep_until(due);
                    let cut = wait_for_reset(&self.half.pipe);
                    let _ = select(sleep, pin!(cut)).await;
                }
                Next::Wait => {
                    poll_fn(|cx| {
                        let mut pipe = lock(&self.half.pipe);
                        if pipe.next_due().is_some() || pipe.ends() != Ends::Open {
                            Poll::Ready(())
                        } else {
                            pipe.wait_to_read(cx.waker());
                            Poll::Pending
                        }
                    })
                    .await;
                }
            }
        }
    }

    fn peek(&self, max_len: usize) -> &[u8] {
        self.arrived
            .front()
            .map_or(&[], |front| &front.as_ref()[..max_len.min(front.len())])
    }
}

/// Resolves when the pipe is cut (what is in flight is gone then).
async fn wait_for_reset(pipe: &Mutex<Pipe>) {
    poll_fn(|cx| {
        let mut pipe = lock(pipe);
        if pipe.ends() == Ends::Reset {
            Poll::Ready(())
        } else {
            pipe.wait_to_read(cx.waker());
            Poll::Pending
        }
    })
    .await;
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.half.close(Ends::ReaderClosed);
    }
}

/// Accepts the connections dialed to one address of a node.
pub struct Listener {
    shared: Shared,
    id: u64,
    address: SocketAddr,
    incoming: mpsc::UnboundedReceiver<Accepted>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl commonware_runtime::Listener for Listener {
    type Sink = Sink;
    type Stream = Stream;

    async fn accept(&mut self) -> Result<(SocketAddr, Sink, Stream), Error> {
        // The sender side goes away when the node crashes.
        let accepted = self.incoming.next().await.ok_or(Error::Closed)?;
        lock(&self.shared).accepted(self.address, self.id);
        Ok(accepted)
    }

    fn local_addr(&self) -> Result<SocketAddr, std::io::Error> {
        Ok(self.address)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        lock(&self.shared).unbind(self.address, self.id);
    }
}

impl<E: Clock + CryptoRng + Send + 'static> commonware_runtime::Network for NodeNetwork<E> {
    type Listener = Listener;

    async fn bind(&self, socket: SocketAddr) -> Result<Listener, Error> {
        let (id, address, incoming) = lock(&self.shared).bind(self.ip, socket)?;
        Ok(Listener {
            shared: self.shared.clone(),
            id,
            address,
            incoming,
        })
    }

    /// Connects after one round trip on the link; fails after one round trip when the node
    /// is down or not listening, and after the unreachable delay across a partition.
    async fn dial(&self, socket: SocketAddr) -> Result<(Sink, Stream), Error> {
        let round_trip = {
            let state = lock(&self.shared);
            let link = state.link(self.ip, socket.ip());
            let mut rng = lock(&self.context);
            link.delay(rng.next_u64()) + link.delay(rng.next_u64())
        };
        let sleep = lock(&self.context).sleep(round_trip);
        sleep.await;
        let (outcome, unreachable_delay) = {
            let mut state = lock(&self.shared);
            let outcome = state.connect(&self.shared, &self.context, self.ip, socket);
            (outcome, state.config().unreachable_dial_delay)
        };
        let refusal = match outcome {
            Ok(connection) => return Ok(connection),
            Err(refusal) => refusal,
        };
        match refusal {
            Refusal::Unreachable => {
                let sleep = lock(&self.context).sleep(unreachable_delay);
                sleep.await;
            }
            Refusal::Refused => {}
            // With the state unlocked: the ends of a connection nobody took.
            Refusal::Gone(ends) => drop(ends),
        }
        Err(Error::ConnectionFailed)
    }
}
