//! The upstream resolvers, one list shared by every shard's forwarder and
//! the DNS-over-TCP server, replaced whole when the host's resolv.conf
//! changes (`control::resolv` watches it). A query reads the list once,
//! as a reference-counted slice: no allocation, and a change never shows
//! a query half of the old list and half of the new. Answers are taken
//! only from an upstream in the list when they arrive, so a query still
//! waiting on an upstream that was just dropped times out (the client
//! retries, and its retry goes to the new list).

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

/// A shared, replaceable list of upstream resolvers.
#[derive(Debug, Clone, Default)]
pub struct Upstreams(Arc<RwLock<Arc<[SocketAddr]>>>);

impl Upstreams {
    pub fn new(list: Vec<SocketAddr>) -> Upstreams {
        Upstreams(Arc::new(RwLock::new(list.into())))
    }

    /// The list now.
    pub fn get(&self) -> Arc<[SocketAddr]> {
        // A writer never panics while holding the lock (it only stores).
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the list; whether it changed.
    pub fn set(&self, list: Vec<SocketAddr>) -> bool {
        let mut l = self.0.write().unwrap_or_else(|p| p.into_inner());
        if **l == *list {
            return false;
        }
        *l = list.into();
        true
    }
}

impl From<Vec<SocketAddr>> for Upstreams {
    fn from(list: Vec<SocketAddr>) -> Upstreams {
        Upstreams::new(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_seen_by_every_holder_and_a_read_keeps_its_list() {
        let a: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let b: SocketAddr = "[::1]:53".parse().unwrap();
        let u = Upstreams::new(vec![a]);
        let shard = u.clone();
        let held = shard.get();
        assert!(u.set(vec![b, a]));
        assert!(!u.set(vec![b, a]), "the same list is no change");
        assert_eq!(&*shard.get(), &[b, a]);
        assert_eq!(&*held, &[a], "a query in flight keeps what it read");
    }
}
