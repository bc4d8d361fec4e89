//! A runtime context for one simulated node: the runtime's own context for tasks, time,
//! metrics and randomness, with the node's simulated network in place of the runtime's.
//!
//! Code generic over the runtime's traits (palisade-p2p's `Network::new(context, ..)`) runs
//! on a node by taking this context; every task it spawns gets the same network, so the
//! node's listener, dialer and peers all live at the node's address.

use crate::NodeNetwork;
use commonware_runtime::{
    Clock, Error, Handle, Metrics, Name, Spawner, Supervisor,
    signal::Signal,
    telemetry::metrics::{Metric, Registered},
};
use rand_core::{CryptoRng, TryCryptoRng, TryRng};
use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    time::{Duration, SystemTime},
};

/// The context of one simulated node.
pub struct Context<E> {
    inner: E,
    network: NodeNetwork<E>,
}

impl<E> std::fmt::Debug for Context<E> {
    /// The node's network view (its address); the wrapped runtime context says nothing more.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl<E> Context<E> {
    /// `inner` with `network` as its network.
    pub fn new(inner: E, network: NodeNetwork<E>) -> Self {
        Self { inner, network }
    }

    /// The node's network.
    pub fn network(&self) -> &NodeNetwork<E> {
        &self.network
    }

    /// The runtime context underneath.
    pub fn inner(&self) -> &E {
        &self.inner
    }
}

impl<E: Supervisor> Supervisor for Context<E> {
    fn name(&self) -> Name {
        self.inner.name()
    }

    fn child(&self, label: &'static str) -> Self {
        Self {
            inner: self.inner.child(label),
            network: self.network.clone(),
        }
    }

    fn with_attribute(self, key: &'static str, value: impl std::fmt::Display) -> Self {
        Self {
            inner: self.inner.with_attribute(key, value),
            network: self.network,
        }
    }
}

impl<E: Spawner> Spawner for Context<E> {
    fn shared(self, blocking: bool) -> Self {
        Self {
            inner: self.inner.shared(blocking),
            network: self.network,
        }
    }

    fn dedicated(self) -> Self {
        Self {
            inner: self.inner.dedicated(),
            network: self.network,
        }
    }

    fn spawn<F, Fut, T>(self, f: F) -> Handle<T>
    where
        F: FnOnce(Self) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let network = self.network;
        self.inner.spawn(move |inner| f(Self { inner, network }))
    }

    fn stop(
        self,
        value: i32,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        self.inner.stop(value, timeout)
    }

    fn stopped(&self) -> Signal {
        self.inner.stopped()
    }
}

impl<E: Metrics> Metrics for Context<E> {
    fn register<N: Into<String>, H: Into<String>, M: Metric>(
        &self,
        name: N,
        help: H,
        metric: M,
    ) -> Registered<M> {
        self.inner.register(name, help, metric)
    }

    fn encode(&self) -> String {
        self.inner.encode()
    }
}

impl<E: Clock> governor::clock::Clock for Context<E> {
    type Instant = SystemTime;

    fn now(&self) -> SystemTime {
        self.inner.current()
    }
}

impl<E: Clock> governor::clock::ReasonablyRealtime for Context<E> {}

impl<E: Clock> Clock for Context<E> {
    fn current(&self) -> SystemTime {
        self.inner.current()
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static + use<E> {
        self.inner.sleep(duration)
    }

    fn sleep_until(
        &self,
        deadline: SystemTime,
    ) -> impl Future<Output = ()> + Send + 'static + use<E> {
        self.inner.sleep_until(deadline)
    }
}

impl<E: Clock + CryptoRng + Send + 'static> commonware_runtime::Network for Context<E> {
    type Listener = crate::socket::Listener;

    async fn bind(&self, socket: SocketAddr) -> Result<Self::Listener, Error> {
        self.network.bind(socket).await
    }

    async fn dial(
        &self,
        socket: SocketAddr,
    ) -> Result<(crate::socket::Sink, crate::socket::Stream), Error> {
        self.network.dial(socket).await
    }
}

impl<E: TryRng<Error = Infallible>> TryRng for Context<E> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.inner.try_next_u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.inner.try_next_u64()
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.inner.try_fill_bytes(dst)
    }
}

impl<E: TryCryptoRng<Error = Infallible>> TryCryptoRng for Context<E> {}

/// Names resolve as the runtime underneath resolves them (the deterministic runtime resolves
/// what `resolver_register` told it).
impl<E: commonware_runtime::Resolver> commonware_runtime::Resolver for Context<E> {
    fn resolve(
        &self,
        host: &str,
    ) -> impl Future<Output = Result<Vec<std::net::IpAddr>, Error>> + Send {
        self.inner.resolve(host)
    }
}

/// Storage is the runtime's own: a node restarted under the same partitions finds what it
/// wrote before its crash.
impl<E: commonware_runtime::Storage> commonware_runtime::Storage for Context<E> {
    type Blob = E::Blob;

    fn open_versioned(
        &self,
        partition: &str,
        name: &[u8],
        versions: std::ops::RangeInclusive<commonware_runtime::BlobVersion>,
    ) -> impl Future<Output = Result<(Self::Blob, u64, commonware_runtime::BlobVersion), Error>> + Send
    {
        self.inner.open_versioned(partition, name, versions)
    }

    fn remove(
        &self,
        partition: &str,
        name: Option<&[u8]>,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        self.inner.remove(partition, name)
    }

    fn scan(&self, partition: &str) -> impl Future<Output = Result<Vec<Vec<u8>>, Error>> + Send {
        self.inner.scan(partition)
    }
}
