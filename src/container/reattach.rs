//! A container outlives its daemon: `lanyard run` keeps a copy of each
//! TAP it handed to the daemon, so the container's interfaces (with their
//! addresses and routes) stay while the daemon is gone, and attaches them
//! again, with the same addresses, names and published ports, when a
//! daemon serves the socket again.
//!
//! # States
//!
//! | state | on | next |
//! |---|---|---|
//! | attached | an event `detached` (disconnect, `network rm --force`) | drop that TAP's copy: the interface goes, as docker's does |
//! | attached | the connection closes (the daemon stopped or died) | lost, at `now` |
//! | lost | a daemon answers on the socket | attach every kept TAP again; any refusal: give up |
//! | lost | `limit` passed | give up: the container is stopped, `run` exits [`EXIT_DAEMON_GONE`] |
//!
//! While lost, the container's frames queue in its TAP and then drop; its
//! TCP connections to the outside are reset by the new daemon (it has no
//! flow for them), connections between containers resume. Interfaces
//! `lanyard connect` added belong to the daemon alone and go with it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::control::client::Client;
use crate::control::proto::{AttachReply, AttachRequest, Event, Request};
use crate::log;

/// `run`'s exit code when its daemon went away and did not come back in
/// time: 125, as for any failure of the engine rather than the command.
pub const EXIT_DAEMON_GONE: i32 = super::EXIT_SETUP_FAILED;

/// How often a lost `run` looks for a daemon.
const RETRY: Duration = Duration::from_millis(250);

/// A TAP handed to the daemon, and how to ask for it again.
struct Kept {
    req: AttachRequest,
    tap: OwnedFd,
}

/// Why `run` gave up on its daemon.
#[derive(Debug)]
pub struct Gone(pub String);

pub struct Reattach {
    path: PathBuf,
    client: Option<Client>,
    kept: Vec<Kept>,
    limit: Duration,
    lost_at: Option<Instant>,
    next_try: Instant,
}

impl Reattach {
    /// `limit`: how long to wait for a daemon once it is gone.
    pub fn new(path: PathBuf, client: Client, limit: Duration) -> Reattach {
        Reattach {
            path,
            client: Some(client),
            kept: Vec::new(),
            limit,
            lost_at: None,
            next_try: Instant::now(),
        }
    }

    /// The client, for the first attaches.
    pub fn client(&mut self) -> Option<&mut Client> {
        self.client.as_mut()
    }

    /// Remembers an attached TAP: `ours` is our copy of it, `reply` what
    /// the daemon gave it (asked for again exactly, addresses included).
    pub fn keep(&mut self, mut req: AttachRequest, reply: &AttachReply, ours: OwnedFd) {
        req.ip = Some(reply.ip);
        req.ip6 = reply.ipv6.map(|v| v.ip);
        req.mtu = Some(reply.mtu);
        req.name = Some(reply.name.clone());
        self.kept.push(Kept { req, tap: ours });
    }

    /// One look at the daemon, between the supervisor's waits; `Err` to
    /// give up (the caller stops the container).
    pub fn tick(&mut self) -> Result<(), Gone> {
        if let Some(c) = self.client.as_mut() {
            loop {
                match c.poll_event() {
                    Ok(Some(Event::Detached { ifname, network })) => {
                        log::info!("{ifname} was disconnected from {network}");
                        self.kept
                            .retain(|k| k.req.ifname.as_deref() != Some(ifname.as_str()));
                    }
                    Ok(None) => return Ok(()),
                    Err(e) => {
                        log::warn!(
                            "lost the daemon at {} ({e}); the container keeps running, without a network, for up to {:?} until a daemon serves there again",
                            self.path.display(),
                            self.limit
                        );
                        self.client = None;
                        self.lost_at = Some(Instant::now());
                        break;
                    }
                }
            }
        }
        let lost_at = self.lost_at.unwrap_or_else(Instant::now);
        if lost_at.elapsed() > self.limit {
            return Err(Gone(format!(
                "no daemon came back at {} within {:?}; stopping the container",
                self.path.display(),
                self.limit
            )));
        }
        if Instant::now() < self.next_try {
            return Ok(());
        }
        self.next_try = Instant::now() + RETRY;
        let Ok(mut c) = Client::connect(&self.path) else {
            return Ok(());
        };
        for k in &self.kept {
            let copy = crate::sys::sock::dup(k.tap.as_raw_fd())
                .map_err(|e| Gone(format!("re-attaching: {e}")))?;
            let r = c.request(&Request::Attach(k.req.clone()), &[copy.as_raw_fd()]);
            drop(copy);
            match r {
                Ok(_) => log::info!(
                    "re-attached {} to {} as {}",
                    k.req.ifname.as_deref().unwrap_or("?"),
                    k.req.network,
                    k.req.ip.map(|i| i.to_string()).unwrap_or_default()
                ),
                // A daemon that is there but refuses (a network it no
                // longer has, a port now taken) will not change its mind.
                Err(e) => {
                    return Err(Gone(format!(
                        "the daemon at {} refused {} back on {}: {e}; stopping the container",
                        self.path.display(),
                        k.req.ifname.as_deref().unwrap_or("?"),
                        k.req.network
                    )))
                }
            }
        }
        self.client = Some(c);
        self.lost_at = None;
        Ok(())
    }
}
