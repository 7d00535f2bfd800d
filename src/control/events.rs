//! The data path's events, handled on a thread of their own
//! (`lanyard-events`): each DHCP message a gateway receives goes to the
//! server in `dhcp.rs` under the registry's lock, and the reply back out of
//! the port it came from; leases expire on time.

use super::Daemon;

pub(super) fn events_loop(
    daemon: std::sync::Weak<Daemon>,
    rx: crossbeam_channel::Receiver<crate::dataplane::Event>,
) {
    // Leases expire on time whether or not DHCP messages keep coming (a
    // flood must not hold its offers past their timeout).
    const EXPIRY_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
    let mut last_expiry = std::time::Instant::now();
    loop {
        let r = rx.recv_timeout(EXPIRY_EVERY);
        let Some(d) = daemon.upgrade() else { return };
        match r {
            Ok(crate::dataplane::Event::Dhcp { net, port, frame }) => {
                d.dhcp(net, port, frame.bytes());
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        }
        if last_expiry.elapsed() >= EXPIRY_EVERY {
            last_expiry = std::time::Instant::now();
            d.expire_leases();
        }
    }
}

impl Daemon {
    /// One DHCP message from the data path.
    fn dhcp(&self, net: crate::dataplane::NetworkId, port: crate::port::PortId, frame: &[u8]) {
        let mut reg = self.reg();
        let Some(name) = reg
            .networks
            .iter()
            .find(|n| n.dp == net)
            .map(|n| n.config.name.clone())
        else {
            return;
        };
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let s = &self.dhcp_settings;
        if let Some(reply) = leases.handle(
            &mut reg,
            &name,
            frame,
            s.lease,
            s.max_leases,
            std::time::Instant::now(),
        ) {
            self.dp.send_frame(port, reply);
        }
    }

    fn expire_leases(&self) {
        let mut reg = self.reg();
        self.leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .expire(&mut reg, std::time::Instant::now());
    }
}
