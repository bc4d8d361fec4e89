//! The runtime capabilities the network needs, under one name.

use commonware_runtime::{Clock, Metrics, Network, Resolver, Spawner};
use rand_core::CryptoRng;

/// Everything the network takes from its runtime context: tasks, time, sockets, name
/// resolution (for peers whose address is a DNS name), metrics and randomness. Both `commonware_runtime::deterministic::Context` and
/// `commonware_runtime::tokio::Context` qualify.
pub trait Context: Spawner + Clock + Network + Resolver + Metrics + CryptoRng {}

impl<T: Spawner + Clock + Network + Resolver + Metrics + CryptoRng> Context for T {}
