//! Who may start a handshake, decided before anything is read: the listener's concurrent
//! handshake slots, shared out so that no source takes them all.
//!
//! - at most `max_concurrent_handshakes` at once;
//! - of those, `reserved_handshakes` (at most half) only for connections from a tracked
//!   peer's address (an ingress or egress the peer sets name): strangers, from however many
//!   addresses, hold at most the rest, so members keep reaching each other during a flood;
//! - at most `max_handshakes_per_ip` at once from one address.
//!
//! The rates per address and per subnet are applied before this (see the listener). Each
//! refusal has its own reason, counted in `handshakes{direction="inbound",reason}`.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

/// Why a connection gets no handshake slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Every slot is taken.
    Full,
    /// Every slot strangers may take is taken (the rest are kept for tracked peers).
    StrangersFull,
    /// Its address runs its share of handshakes already.
    AddressFull,
}

impl Refusal {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Full => "too_many_handshakes",
            Self::StrangersFull => "too_many_from_strangers",
            Self::AddressFull => "too_many_from_address",
        }
    }
}

/// The limits, from the configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) total: usize,
    pub(crate) reserved: usize,
    pub(crate) per_ip: usize,
}

/// Handshakes under way.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: Limits,
    total: usize,
    strangers: usize,
    per_ip: BTreeMap<IpAddr, usize>,
}

impl Admission {
    pub(crate) fn new(limits: Limits) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            limits,
            total: 0,
            strangers: 0,
            per_ip: BTreeMap::new(),
        }))
    }

    fn try_take(&mut self, ip: IpAddr, tracked: bool) -> Result<(), Refusal> {
        if self.total >= self.limits.total {
            return Err(Refusal::Full);
        }
        let reserved = self.limits.reserved.min(self.limits.total / 2);
        if !tracked && self.strangers >= self.limits.total - reserved {
            return Err(Refusal::StrangersFull);
        }
        // Looked up before inserting: a refused address leaves no entry behind.
        if self.per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.per_ip {
            return Err(Refusal::AddressFull);
        }
        *self.per_ip.entry(ip).or_default() += 1;
        self.total += 1;
        if !tracked {
            self.strangers += 1;
        }
        Ok(())
    }

    fn give_back(&mut self, ip: IpAddr, tracked: bool) {
        self.total -= 1;
        if !tracked {
            self.strangers -= 1;
        }
        if let Some(from_ip) = self.per_ip.get_mut(&ip) {
            *from_ip -= 1;
            if *from_ip == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// A handshake slot, given back when dropped, however the handshake ends.
#[derive(Debug)]
pub(crate) struct Slot {
    admission: Arc<Mutex<Admission>>,
    ip: IpAddr,
    tracked: bool,
}

/// Takes a slot for a handshake from `ip` (`tracked`: an address of a tracked peer).
pub(crate) fn admit(
    admission: &Arc<Mutex<Admission>>,
    ip: IpAddr,
    tracked: bool,
) -> Result<Slot, Refusal> {
    lock(admission).try_take(ip, tracked)?;
    Ok(Slot {
        admission: admission.clone(),
        ip,
        tracked,
    })
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.admission).give_back(self.ip, self.tracked);
    }
}

fn lock(admission: &Mutex<Admission>) -> std::sync::MutexGuard<'_, Admission> {
    admission
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The subnet `ip` is in: its first `v4` bits for IPv4, `v6` bits for IPv6.
pub(crate) fn subnet(ip: IpAddr, v4: u8, v6: u8) -> IpAddr {
    match ip {
        IpAddr::V4(address) => {
            let bits = u32::from(address);
            let mask = u32::MAX
                .checked_shl(32 - u32::from(v4.min(32)))
                .unwrap_or(0);
            IpAddr::from((bits & mask).to_be_bytes())
        }
        IpAddr::V6(address) => {
            let bits = u128::from(address);
            let mask = u128::MAX
                .checked_shl(128 - u32::from(v6.min(128)))
                .unwrap_or(0);
            IpAddr::from((bits & mask).to_be_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn strangers_never_take_the_reserved_slots_and_each_address_has_its_share() {
        let admission = Admission::new(Limits {
            total: 4,
            reserved: 2,
            per_ip: 1,
        });
        let first = admit(&admission, ip(1), false).unwrap();
        assert_eq!(
            admit(&admission, ip(1), false).err(),
            Some(Refusal::AddressFull)
        );
        let _second = admit(&admission, ip(2), false).unwrap();
        assert_eq!(
            admit(&admission, ip(3), false).err(),
            Some(Refusal::StrangersFull)
        );
        assert_eq!(lock(&admission).per_ip.len(), 2, "refusals leave no entry");
        // A tracked peer's address still gets in, up to the total.
        let _member = admit(&admission, ip(10), true).unwrap();
        let _other = admit(&admission, ip(11), true).unwrap();
        assert_eq!(admit(&admission, ip(12), true).err(), Some(Refusal::Full));
        // Slots come back when dropped.
        drop(first);
        assert!(admit(&admission, ip(3), false).is_ok());
    }

    #[test]
    fn subnets_keep_their_prefix() {
        assert_eq!(
            subnet(IpAddr::from([203, 0, 113, 77]), 24, 64),
            IpAddr::from([203, 0, 113, 0])
        );
        assert_eq!(
            subnet(IpAddr::from([203, 0, 113, 77]), 0, 64),
            IpAddr::from([0, 0, 0, 0])
        );
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(
            subnet(v6, 24, 64),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(subnet(v6, 24, 128), v6);
    }
}
