//! The data path thread: a mio poll loop that owns the [`Switch`], reads
//! ready ports in batches, runs the timers, and takes commands from the
//! control plane over a channel paired with a mio `Waker`. It holds no
//! policy: what to attach and where comes from `control`.

pub mod switch;

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::frame::FrameBuf;
use crate::log;
use crate::nat::{NatConfig, DNS_TOKEN_BASE, FLOW_TOKEN_BASE, FORWARD_TOKEN_BASE};
use crate::port::{Port, PortId};
use crate::time::{Clock, Time};

pub use switch::{NetworkId, NetworkSpec, PortSpec, Snapshot, Switch, SwitchError, Verdict};

const WAKER: Token = Token(0);
/// How often timers run: NAT retransmissions and idle flows (the switch
/// ages MAC tables once a second of these).
const TICK: Duration = Duration::from_millis(50);

/// What the data path tells the control plane (unasked).
#[derive(Debug)]
pub enum Event {
    /// A DHCP client message arrived at a network's gateway.
    Dhcp {
        net: NetworkId,
        port: PortId,
        frame: Vec<u8>,
    },
}

/// A request from the control plane; each carries its reply channel.
pub enum Command {
    AddNetwork {
        spec: NetworkSpec,
        reply: Sender<NetworkId>,
    },
    RemoveNetwork {
        id: NetworkId,
        reply: Sender<Result<(), SwitchError>>,
    },
    AddPort {
        port: Box<dyn Port>,
        spec: PortSpec,
        reply: Sender<Result<PortId, SwitchError>>,
    },
    RemovePort {
        id: PortId,
        reply: Sender<bool>,
    },
    Snapshot {
        reply: Sender<Snapshot>,
    },
    Conntrack {
        reply: Sender<Vec<crate::nat::FlowReport>>,
    },
    AddForwards {
        port: PortId,
        forwards: Vec<(std::os::fd::OwnedFd, crate::publish::Mapping)>,
        reply: Sender<Result<Vec<u32>, String>>,
    },
    RemoveForwards {
        ids: Vec<u32>,
        reply: Sender<()>,
    },
    ForwardCounts {
        ids: Vec<u32>,
        reply: Sender<Vec<Option<(u64, u64)>>>,
    },
    /// Names the embedded DNS answers for an endpoint (empty: forget).
    SetNames {
        net: NetworkId,
        ip: std::net::Ipv4Addr,
        container: String,
        names: Vec<String>,
        reply: Sender<()>,
    },
    /// Sends a frame the control plane built (a DHCP reply) out of a port.
    SendFrame {
        port: PortId,
        frame: Vec<u8>,
    },
    Shutdown,
}

/// The data path thread is gone (it panicked or was shut down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataplaneGone;

impl std::fmt::Display for DataplaneGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the data path thread has stopped")
    }
}

impl std::error::Error for DataplaneGone {}

/// The control plane's handle on the data path thread.
#[derive(Clone)]
pub struct DataplaneHandle {
    tx: Sender<Command>,
    waker: Arc<Waker>,
}

impl DataplaneHandle {
    fn call<R>(&self, make: impl FnOnce(Sender<R>) -> Command) -> Result<R, DataplaneGone> {
        let (reply, rx) = bounded(1);
        self.tx.send(make(reply)).map_err(|_| DataplaneGone)?;
        self.waker.wake().map_err(|_| DataplaneGone)?;
        rx.recv().map_err(|_| DataplaneGone)
    }

    pub fn add_network(&self, spec: NetworkSpec) -> Result<NetworkId, DataplaneGone> {
        self.call(|reply| Command::AddNetwork { spec, reply })
    }

    pub fn remove_network(&self, id: NetworkId) -> Result<Result<(), SwitchError>, DataplaneGone> {
        self.call(|reply| Command::RemoveNetwork { id, reply })
    }

    pub fn add_port(
        &self,
        port: Box<dyn Port>,
        spec: PortSpec,
    ) -> Result<Result<PortId, SwitchError>, DataplaneGone> {
        self.call(|reply| Command::AddPort { port, spec, reply })
    }

    pub fn remove_port(&self, id: PortId) -> Result<bool, DataplaneGone> {
        self.call(|reply| Command::RemovePort { id, reply })
    }

    pub fn snapshot(&self) -> Result<Snapshot, DataplaneGone> {
        self.call(|reply| Command::Snapshot { reply })
    }

    pub fn conntrack(&self) -> Result<Vec<crate::nat::FlowReport>, DataplaneGone> {
        self.call(|reply| Command::Conntrack { reply })
    }

    pub fn add_forwards(
        &self,
        port: PortId,
        forwards: Vec<(std::os::fd::OwnedFd, crate::publish::Mapping)>,
    ) -> Result<Result<Vec<u32>, String>, DataplaneGone> {
        self.call(|reply| Command::AddForwards {
            port,
            forwards,
            reply,
        })
    }

    pub fn remove_forwards(&self, ids: Vec<u32>) -> Result<(), DataplaneGone> {
        self.call(|reply| Command::RemoveForwards { ids, reply })
    }

    pub fn set_names(
        &self,
        net: NetworkId,
        ip: std::net::Ipv4Addr,
        container: String,
        names: Vec<String>,
    ) -> Result<(), DataplaneGone> {
        self.call(|reply| Command::SetNames {
            net,
            ip,
            container,
            names,
            reply,
        })
    }

    pub fn forward_counts(&self, ids: Vec<u32>) -> Result<Vec<Option<(u64, u64)>>, DataplaneGone> {
        self.call(|reply| Command::ForwardCounts { ids, reply })
    }

    /// Sends a frame out of a port, without waiting.
    pub fn send_frame(&self, port: PortId, frame: Vec<u8>) {
        if self.tx.send(Command::SendFrame { port, frame }).is_ok() {
            let _ = self.waker.wake();
        }
    }

    pub fn shutdown(&self) {
        if self.tx.send(Command::Shutdown).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// The running data path thread.
pub struct Dataplane {
    handle: DataplaneHandle,
    thread: Option<JoinHandle<()>>,
}

impl Dataplane {
    /// Starts the thread with an empty switch.
    pub fn start(
        max_ports: usize,
        batch_size: usize,
        nat: NatConfig,
        events: Option<Sender<Event>>,
    ) -> io::Result<Dataplane> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut switch = Switch::with_nat(max_ports, nat);
        switch.set_registry(poll.registry().try_clone()?);
        if let Some(e) = events {
            switch.set_events(e);
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("lanyard-dataplane".into())
            .spawn(move || {
                let mut lp = Loop::new(poll, rx, switch, batch_size.max(1));
                lp.run();
            })?;
        Ok(Dataplane {
            handle: DataplaneHandle { tx, waker },
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> DataplaneHandle {
        self.handle.clone()
    }

    /// False once the thread has ended (stopped, or died of a panic).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the thread and waits for it; ports are closed.
    pub fn stop(mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.handle.shutdown();
            let _ = t.join();
        }
    }
}

struct Loop {
    poll: Poll,
    rx: Receiver<Command>,
    switch: Switch,
    clock: Clock,
    bufs: Vec<FrameBuf>,
    /// Ports with frames possibly still waiting (read a full batch last
    /// time, or signalled readable). Edge-triggered readiness means a port
    /// must stay here until a read comes back short.
    ready: Vec<PortId>,
    is_ready: Vec<bool>,
    next_tick: Time,
}

fn token(id: PortId) -> Token {
    Token(id.index() + 1)
}

impl Loop {
    fn new(poll: Poll, rx: Receiver<Command>, switch: Switch, batch: usize) -> Loop {
        Loop {
            poll,
            rx,
            switch,
            clock: Clock::new(),
            bufs: (0..batch).map(|_| FrameBuf::new()).collect(),
            ready: Vec::new(),
            is_ready: Vec::new(),
            next_tick: Time::ZERO,
        }
    }

    fn mark_ready(&mut self, id: PortId) {
        let i = id.index();
        if i >= self.is_ready.len() {
            self.is_ready.resize(i + 1, false);
        }
        if !self.is_ready[i] {
            self.is_ready[i] = true;
            self.ready.push(id);
        }
    }

    fn run(&mut self) {
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
                let t = ev.token().0;
                if ev.token() == WAKER {
                    continue;
                }
                if t >= FLOW_TOKEN_BASE {
                    // An error (a refused connect, a reset) is handled by
                    // the read or write that reports it.
                    let err = ev.is_error();
                    self.switch.nat_flow_event(
                        t,
                        ev.is_readable() || ev.is_read_closed() || err,
                        ev.is_writable() || err,
                        now,
                    );
                } else if t >= DNS_TOKEN_BASE {
                    self.switch.nat_dns_event(t, now);
                } else if t >= FORWARD_TOKEN_BASE {
                    self.switch.nat_forward_event(t, now);
                } else {
                    self.mark_ready(PortId((t - 1) as u32));
                }
            }
            // Commands first: a removal must not race a read of the port.
            while let Ok(cmd) = self.rx.try_recv() {
                if !self.command(cmd) {
                    return;
                }
            }
            let now = self.clock.now();
            // One batch per ready port per round, round-robin, so a busy
            // port cannot starve the others.
            std::mem::swap(&mut batch_ready, &mut self.ready);
            for &id in &batch_ready {
                self.is_ready[id.index()] = false;
            }
            for &id in &batch_ready {
                match self.switch.poll_port(id, &mut self.bufs, now) {
                    Ok(n) if n == self.bufs.len() => self.mark_ready(id),
                    Ok(_) => {}
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
            if now >= self.next_tick {
                self.switch.tick(now);
                self.next_tick = now.saturating_add(TICK);
            }
        }
    }

    /// Applies one command; false to stop the loop.
    fn command(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::AddNetwork { spec, reply } => {
                let _ = reply.send(self.switch.add_network(spec));
            }
            Command::RemoveNetwork { id, reply } => {
                let _ = reply.send(self.switch.remove_network(id));
            }
            Command::AddPort { port, spec, reply } => {
                let fd: Option<RawFd> = port.raw_fd();
                let r = self.switch.add_port(port, spec);
                if let (Ok(id), Some(fd)) = (r, fd) {
                    if let Err(e) = self.poll.registry().register(
                        &mut SourceFd(&fd),
                        token(id),
                        Interest::READABLE,
                    ) {
                        log::error!("cannot poll port {id}: {e}");
                        self.switch.remove_port(id);
                        let _ = reply.send(Err(SwitchError::TooManyPorts));
                        return true;
                    }
                }
                let _ = reply.send(r);
            }
            Command::RemovePort { id, reply } => {
                if let Some(fd) = self.switch.port_fd(id) {
                    let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
                }
                let removed = self.switch.remove_port(id).is_some();
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
            Command::ForwardCounts { ids, reply } => {
                let _ = reply.send(ids.iter().map(|i| self.switch.forward_counts(*i)).collect());
            }
            Command::SendFrame { port, frame } => self.switch.send_frame(port, &frame),
            Command::Shutdown => return false,
        }
        true
    }
}
