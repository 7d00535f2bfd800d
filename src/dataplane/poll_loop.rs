//! One shard's thread: a mio poll loop that owns a [`Switch`], reads its
//! own ports in batches, runs the timers, takes commands from the control
//! plane over a channel paired with a mio `Waker`, and trades learned MACs
//! with the other shards.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use super::switch::{Learned, LEARNED_OUTBOX};
use super::{Command, Switch, SwitchError};
use crate::frame::FrameBuf;
use crate::host::PollToken;
use crate::log;
use crate::port::PortId;
use crate::time::{Clock, Time};

/// The waker's poll token (every token is a `host::PollToken`).
pub(super) fn waker_token() -> Token {
    PollToken::Waker.encode()
}
/// How often timers run: NAT retransmissions and idle flows (the switch
/// ages MAC tables once a second of these).
const TICK: Duration = Duration::from_millis(50);
/// The longest turn a port gets (see `run`).
const TURN: Duration = Duration::from_micros(250);

/// Another shard, as this one reaches it: where learned MACs go.
#[derive(Clone)]
pub(super) struct Peer {
    pub sync: Sender<Learned>,
    pub waker: Arc<Waker>,
}

pub(super) struct Loop {
    poll: Poll,
    rx: Receiver<Command>,
    /// MACs the other shards learned.
    sync_rx: Receiver<Learned>,
    peers: Vec<Peer>,
    /// Learned MACs on their way to the peers (reused every round).
    outbox: Vec<Learned>,
    switch: Switch,
    clock: Clock,
    bufs: Vec<FrameBuf>,
    /// Ports with frames possibly still waiting (read a full batch last
    /// time, or signalled readable). Edge-triggered readiness means a port
    /// must stay here until a read comes back short.
    ready: Vec<PortId>,
    is_ready: Vec<bool>,
    /// Ports whose last turn ended with frames left: busy, so their next
    /// turn is a quarter batch (see `run`).
    busy: Vec<bool>,
    next_tick: Time,
}

fn token(id: PortId) -> Token {
    PollToken::Port(id).encode()
}

impl Loop {
    pub(super) fn new(
        poll: Poll,
        rx: Receiver<Command>,
        sync_rx: Receiver<Learned>,
        peers: Vec<Peer>,
        mut switch: Switch,
        batch: usize,
    ) -> Loop {
        if !peers.is_empty() {
            switch.enable_learn_sync();
        }
        Loop {
            poll,
            rx,
            sync_rx,
            peers,
            outbox: Vec::with_capacity(LEARNED_OUTBOX),
            switch,
            clock: Clock::new(),
            bufs: (0..batch).map(|_| FrameBuf::new()).collect(),
            ready: Vec::new(),
            is_ready: Vec::new(),
            busy: Vec::new(),
            next_tick: Time::ZERO,
        }
    }

    fn mark_ready(&mut self, id: PortId) {
        let i = id.index();
        if i >= self.is_ready.len() {
            self.is_ready.resize(i + 1, false);
            self.busy.resize(i + 1, false);
        }
        if !self.is_ready[i] {
            self.is_ready[i] = true;
            self.ready.push(id);
        }
    }

    pub(super) fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        let mut batch_ready: Vec<PortId> = Vec::with_capacity(64);
        loop {
            let now = self.clock.now();
            let timeout = if self.ready.is_empty() {
                self.next_tick
                    .saturating_sub(now)
                    .max(Duration::from_millis(1))
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("dataplane poll failed: {e}");
                    return;
                }
            }
            let now = self.clock.now();
            for ev in events.iter() {
                // An error (a refused connect, a reset) is handled by the
                // read or write that reports it.
                let err = ev.is_error();
                match PollToken::decode(ev.token()) {
                    PollToken::Waker => {}
                    PollToken::Port(id) => self.mark_ready(id),
                    host => self.switch.host_event(
                        host,
                        ev.is_readable() || ev.is_read_closed() || err,
                        ev.is_writable() || err,
                        now,
                    ),
                }
            }
            // Commands first: a removal must not race a read of the port.
            while let Ok(cmd) = self.rx.try_recv() {
                if !self.command(cmd) {
                    return;
                }
            }
            let now = self.clock.now();
            self.apply_peer_news(now);
            // Ready ports take turns, round-robin. A turn is a batch of
            // frames (`[limits] batch_size`), or a quarter of one for a
            // port whose last turn left frames waiting (busy), and at most
            // TURN of time, whichever ends first; at least one frame is
            // read, so every port progresses. The count keeps a busy port's
            // small frames from delaying a neighbour's ping or request by
            // more than a quarter batch of them (16 by default; a UDP
            // flood's datagrams each cost a NAT lookup and a send); the
            // time keeps its big ones from doing so (16 super-frames are
            // 1 MiB of copies, most of a millisecond). Counting frames up
            // to that bound, rather than sharing time evenly, is
            // deliberate: a flood of small frames has short turns, so a
            // bulk stream beside it keeps most of the thread (bounding
            // every turn to 50 µs instead took a neighbour's TCP under the
            // floods from 0.60-0.74x to 0.38-0.55x, bench/hostile.sh).
            std::mem::swap(&mut batch_ready, &mut self.ready);
            for &id in &batch_ready {
                self.is_ready[id.index()] = false;
            }
            let full = self.bufs.len();
            for &id in &batch_ready {
                let quantum = if self.busy[id.index()] {
                    (full / 4).max(1)
                } else {
                    full
                };
                let clock = &self.clock;
                let deadline = clock.now().saturating_add(TURN);
                match self
                    .switch
                    .poll_port(id, &mut self.bufs[..quantum], now, || {
                        clock.now() < deadline
                    }) {
                    Ok(p) => {
                        self.busy[id.index()] = p.more;
                        if p.more {
                            self.mark_ready(id);
                        }
                    }
                    Err(e) => {
                        log::warn!("port {id} stopped: {e}; it stays attached until its endpoint is removed");
                        if let Some(fd) = self.switch.port_fd(id) {
                            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
                        }
                        self.switch.mark_dead(id);
                    }
                }
            }
            batch_ready.clear();
            self.announce_learned();
            if now >= self.next_tick {
                self.switch.tick(now);
                self.next_tick = now.saturating_add(TICK);
            }
        }
    }

    /// Learns what the other shards learned.
    fn apply_peer_news(&mut self, now: Time) {
        while let Ok(l) = self.sync_rx.try_recv() {
            self.switch.apply_learned(l, now);
        }
    }

    /// Tells the other shards what this one learned in the last round.
    fn announce_learned(&mut self) {
        if self.peers.is_empty() {
            return;
        }
        self.switch.take_learned(&mut self.outbox);
        if self.outbox.is_empty() {
            return;
        }
        for peer in &self.peers {
            for l in &self.outbox {
                // A full queue loses the news: that peer floods to the MAC
                // until it is announced again (on its next move, or when
                // the entry is renewed).
                if peer.sync.try_send(*l).is_err() {
                    self.switch.learned_dropped += 1;
                }
            }
            let _ = peer.waker.wake();
        }
        self.outbox.clear();
    }

    /// Applies one command; false to stop the loop.
    fn command(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::AddNetwork { id, spec, reply } => {
                let _ = reply.send(self.switch.add_network_with_id(id, spec));
            }
            Command::RemoveNetwork { id, reply } => {
                let _ = reply.send(self.switch.remove_network(id));
            }
            Command::AddPort {
                id,
                port,
                spec,
                reply,
            } => {
                let fd: Option<RawFd> = port.raw_fd();
                let r = self.switch.add_port_with_id(id, port, spec);
                if let (Ok(()), Some(fd)) = (r, fd) {
                    if let Err(e) = self.poll.registry().register(
                        &mut SourceFd(&fd),
                        token(id),
                        Interest::READABLE,
                    ) {
                        log::error!("cannot poll port {id}: {e}");
                        self.switch.remove_port(id);
                        let _ = reply.send(Err(SwitchError::CannotPoll));
                        return true;
                    }
                }
                let _ = reply.send(r);
            }
            Command::RemovePort { id, reply } => {
                // The owner said all it learned on this port before it
                // removed it (it answered first): apply that now, so the
                // flush below clears it and nothing stale outlives the id.
                self.apply_peer_news(self.clock.now());
                if let Some(fd) = self.switch.port_fd(id) {
                    let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
                }
                let removed = self.switch.remove_port(id).is_some();
                // A reused id starts with a whole batch.
                if let Some(b) = self.busy.get_mut(id.index()) {
                    *b = false;
                }
                if let Some(r) = self.is_ready.get_mut(id.index()) {
                    if *r {
                        *r = false;
                        self.ready.retain(|p| *p != id);
                    }
                }
                let _ = reply.send(removed);
            }
            Command::Snapshot { reply } => {
                let _ = reply.send(self.switch.snapshot(self.clock.now()));
            }
            Command::Conntrack { reply } => {
                let _ = reply.send(self.switch.conntrack(self.clock.now()));
            }
            Command::AddForwards {
                port,
                forwards,
                reply,
            } => {
                let _ = reply.send(self.switch.add_forwards(port, forwards));
            }
            Command::RemoveForwards { ids, reply } => {
                self.switch.remove_forwards(&ids);
                let _ = reply.send(());
            }
            Command::SetNames {
                net,
                ip,
                container,
                names,
                reply,
            } => {
                self.switch.set_names(net, ip, &container, &names);
                let _ = reply.send(());
            }
            Command::AddTap { tap, reply } => {
                self.switch.add_tap(tap);
                let _ = reply.send(());
            }
            Command::RemoveTap { id, reply } => {
                self.switch.remove_tap(id);
                let _ = reply.send(());
            }
            Command::SetResolvers {
                net,
                ip,
                resolvers,
                reply,
            } => {
                self.switch.set_resolvers(net, ip, resolvers);
                let _ = reply.send(());
            }
            Command::ForwardCounts { ids, reply } => {
                let _ = reply.send(ids.iter().map(|i| self.switch.forward_counts(*i)).collect());
            }
            Command::SendFrame { port, frame } => self.switch.send_frame(port, &frame),
            Command::Shutdown => {
                self.switch.shutdown();
                return false;
            }
        }
        true
    }
}
