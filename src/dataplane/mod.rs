//! The data path: one or more shards, each a thread with a mio poll loop
//! (`poll_loop`) that owns a [`Switch`]. It holds no policy: what to attach
//! and where comes from `control`, through a [`DataplaneHandle`].
//!
//! # Shards
//!
//! Every port is *owned* by one shard, which alone reads it, runs its
//! gateway traffic and holds its NAT flows and published ports. Every other
//! shard knows the port by the same [`PortId`] as a send-only handle on the
//! same device ([`Port::share`]), so a frame is switched start to finish on
//! the thread that read it — learned, decided and written straight to the
//! egress TAP — with no lock and no hand-off per frame. All shards know all
//! networks (same [`NetworkId`]s) and pin every endpoint's MAC; a MAC one
//! shard learns is sent to the others over a bounded channel, and until it
//! arrives they flood to it, as a switch does for any unknown destination.
//! The ports of one container share a shard (its flow limit and its DNS
//! names stay in one place); containers are spread over the shards by load.
//!
//! With one shard this is exactly the single-threaded switch.

pub mod coalesce;
mod poll_loop;
pub mod switch;
pub mod tap;

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use hashbrown::HashMap;
use mio::{Poll, Waker};

use crate::nat::NatConfig;
use crate::port::{Port, PortId};

use poll_loop::{waker_token, Loop, Peer};
pub use switch::{
    FdbRow, Learned, NetworkId, NetworkReport, NetworkSpec, NetworkSpec6, Polled, PortReport,
    PortSpec, Snapshot, Switch, SwitchError, Verdict,
};

/// Most shards a data path runs.
pub const MAX_SHARDS: usize = 64;
/// Learned MACs queued for one shard.
const SYNC_QUEUE: usize = 4096;
/// Commands queued for one shard. Calls wait for room; frames the control
/// plane sends without waiting (DHCP replies) are dropped when it is full,
/// and the client asks again.
const COMMAND_QUEUE: usize = 1024;

/// What the data path tells the control plane (unasked).
#[derive(Debug)]
pub enum Event {
    /// A DHCP client message arrived at a network's gateway.
    Dhcp {
        net: NetworkId,
        port: PortId,
        frame: DhcpFrame,
    },
}

/// A DHCP client frame, copied inline: the event channel is bounded and
/// preallocated, so handing a frame to the control plane allocates
/// nothing. DHCP messages fit an Ethernet frame (RFC 2131 asks clients for
/// 576 bytes and servers for no more than the client's MTU); longer ones are
/// not DHCP any client sends, and are dropped.
#[derive(Clone)]
pub struct DhcpFrame {
    len: u16,
    bytes: [u8; DhcpFrame::MAX],
}

impl DhcpFrame {
    /// An Ethernet frame of a 1500-byte packet, with a VLAN tag's room.
    pub const MAX: usize = 1518;

    /// A copy of `frame`, or `None` if it is too long.
    pub fn copy_of(frame: &[u8]) -> Option<DhcpFrame> {
        let mut f = DhcpFrame {
            len: frame.len() as u16,
            bytes: [0; DhcpFrame::MAX],
        };
        f.bytes.get_mut(..frame.len())?.copy_from_slice(frame);
        Some(f)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for DhcpFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DhcpFrame({} bytes)", self.len)
    }
}

/// A request to one shard; each carries its reply channel.
enum Command {
    AddNetwork {
        id: NetworkId,
        spec: NetworkSpec,
        reply: Sender<Result<(), SwitchError>>,
    },
    RemoveNetwork {
        id: NetworkId,
        reply: Sender<Result<(), SwitchError>>,
    },
    /// The owner gets the port itself, the other shards a send-only handle.
    AddPort {
        id: PortId,
        port: Box<dyn Port>,
        spec: PortSpec,
        reply: Sender<Result<(), SwitchError>>,
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
        ip: std::net::IpAddr,
        container: String,
        names: Vec<String>,
        reply: Sender<()>,
    },
    /// Starts a capture (`lanyard capture`, `--pcap`).
    AddTap {
        tap: std::sync::Arc<tap::Tap>,
        reply: Sender<()>,
    },
    /// Ends capture `id`.
    RemoveTap {
        id: u64,
        reply: Sender<()>,
    },
    /// A container's own resolvers (`run --dns`); empty: the host's.
    SetResolvers {
        net: NetworkId,
        ip: std::net::IpAddr,
        resolvers: Vec<std::net::SocketAddr>,
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
        f.write_str("a data-path thread has stopped")
    }
}

impl std::error::Error for DataplaneGone {}

/// How the control plane reaches one shard.
#[derive(Clone)]
struct ShardLink {
    tx: Sender<Command>,
    waker: Arc<Waker>,
}

impl ShardLink {
    fn call<R>(&self, make: impl FnOnce(Sender<R>) -> Command) -> Result<R, DataplaneGone> {
        let (reply, rx) = bounded(1);
        self.tx.send(make(reply)).map_err(|_| DataplaneGone)?;
        self.waker.wake().map_err(|_| DataplaneGone)?;
        rx.recv().map_err(|_| DataplaneGone)
    }

    fn post(&self, cmd: Command) {
        if self.tx.try_send(cmd).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// Which shard owns what, and the ids every shard shares. Held for the
/// whole of a change, so all shards see changes in one order.
#[derive(Default)]
struct Placement {
    /// By port id; `None`: a free id.
    ports: Vec<Option<Placed>>,
    /// Ports owned per shard.
    load: Vec<usize>,
    /// Containers' shards and how many of their ports are attached.
    groups: HashMap<u64, (usize, usize)>,
    networks: Vec<bool>,
}

/// Where one port lives.
#[derive(Clone, Copy)]
struct Placed {
    shard: usize,
    /// The container it belongs to.
    group: Option<u64>,
}

impl Placement {
    fn free_port_id(&self) -> PortId {
        PortId(
            self.ports
                .iter()
                .position(|p| p.is_none())
                .unwrap_or(self.ports.len()) as u32,
        )
    }

    /// A container's ports share its shard; a new one goes where the
    /// fewest ports are.
    fn choose(&self, group: Option<u64>) -> usize {
        if let Some((shard, _)) = group.and_then(|g| self.groups.get(&g)) {
            return *shard;
        }
        (0..self.load.len())
            .min_by_key(|s| self.load[*s])
            .unwrap_or(0)
    }

    fn record(&mut self, id: PortId, shard: usize, group: Option<u64>) {
        let i = id.index();
        if i >= self.ports.len() {
            self.ports.resize(i + 1, None);
        }
        self.ports[i] = Some(Placed { shard, group });
        self.load[shard] += 1;
        if let Some(g) = group {
            self.groups.entry(g).or_insert((shard, 0)).1 += 1;
        }
    }

    fn forget(&mut self, id: PortId) {
        let Some(Placed { shard, group }) = self.ports.get_mut(id.index()).and_then(|p| p.take())
        else {
            return;
        };
        self.load[shard] -= 1;
        if let Some(g) = group {
            if let Some(e) = self.groups.get_mut(&g) {
                e.1 -= 1;
                if e.1 == 0 {
                    self.groups.remove(&g);
                }
            }
        }
    }

    fn owner_of(&self, id: PortId) -> Option<usize> {
        self.ports
            .get(id.index())
            .copied()
            .flatten()
            .map(|p| p.shard)
    }
}

/// The control plane's handle on the data path: one call here is applied
/// to every shard it concerns, and answers as one switch would.
#[derive(Clone)]
pub struct DataplaneHandle {
    shards: Arc<[ShardLink]>,
    placement: Arc<Mutex<Placement>>,
}

impl DataplaneHandle {
    fn placement(&self) -> MutexGuard<'_, Placement> {
        // Every change of the placement is complete before the lock is
        // released, so a poisoned lock still holds consistent data.
        self.placement.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many shards (threads) the data path runs.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    pub fn add_network(&self, spec: NetworkSpec) -> Result<NetworkId, DataplaneGone> {
        let mut pl = self.placement();
        let i = pl
            .networks
            .iter()
            .position(|used| !used)
            .unwrap_or(pl.networks.len());
        let id = NetworkId(i as u32);
        for s in self.shards.iter() {
            // A fresh id in every shard: an error here would be a bug of
            // the bookkeeping above, and is reported as the data path gone.
            let spec = spec.clone();
            s.call(|reply| Command::AddNetwork { id, spec, reply })?
                .map_err(|_| DataplaneGone)?;
        }
        if i >= pl.networks.len() {
            pl.networks.resize(i + 1, false);
        }
        pl.networks[i] = true;
        Ok(id)
    }

    pub fn remove_network(&self, id: NetworkId) -> Result<Result<(), SwitchError>, DataplaneGone> {
        let mut pl = self.placement();
        // Every shard holds the same ports, so the first one's answer is
        // everyone's.
        let first = self.shards[0].call(|reply| Command::RemoveNetwork { id, reply })?;
        if first.is_ok() {
            for s in &self.shards[1..] {
                let _ = s.call(|reply| Command::RemoveNetwork { id, reply })?;
            }
            if let Some(used) = pl.networks.get_mut(id.0 as usize) {
                *used = false;
            }
        }
        Ok(first)
    }

    pub fn add_port(
        &self,
        port: Box<dyn Port>,
        spec: PortSpec,
    ) -> Result<Result<PortId, SwitchError>, DataplaneGone> {
        self.add_port_in_group(port, spec, None)
    }

    /// Adds a port; ports of one `group` (a container) share a shard. All
    /// or nothing: on any error no shard keeps it.
    pub fn add_port_in_group(
        &self,
        port: Box<dyn Port>,
        spec: PortSpec,
        group: Option<u64>,
    ) -> Result<Result<PortId, SwitchError>, DataplaneGone> {
        let mut pl = self.placement();
        let id = pl.free_port_id();
        let owner = pl.choose(group);
        // The others first, as send-only handles: by the time the owner
        // reads the port's first frame, every shard can deliver to it.
        let order = (0..self.shards.len())
            .filter(|s| *s != owner)
            .chain([owner]);
        let mut port = Some(port);
        let mut added: Vec<usize> = Vec::with_capacity(self.shards.len());
        for s in order {
            let handle = match port.take_if(|_| s == owner) {
                Some(p) => p,
                None => port.as_ref().expect("the owner goes last").share(),
            };
            let spec = spec.clone();
            match self.shards[s].call(|reply| Command::AddPort {
                id,
                port: handle,
                spec,
                reply,
            }) {
                Ok(Ok(())) => added.push(s),
                failed => {
                    for &a in &added {
                        let _ = self.shards[a].call(|reply| Command::RemovePort { id, reply });
                    }
                    return failed.map(|r| r.map(|()| id));
                }
            }
        }
        pl.record(id, owner, group);
        Ok(Ok(id))
    }

    /// Removes a port from every shard, its owner first (which stops
    /// reading it and ends its flows).
    pub fn remove_port(&self, id: PortId) -> Result<bool, DataplaneGone> {
        let mut pl = self.placement();
        let Some(owner) = pl.owner_of(id) else {
            return Ok(false);
        };
        // Every shard is asked even if one is gone, so the others drop
        // their handles; the daemon stops once it sees a shard dead.
        let removed = self.shards[owner].call(|reply| Command::RemovePort { id, reply });
        let mut gone = removed.is_err();
        for (s, link) in self.shards.iter().enumerate() {
            if s != owner {
                gone |= link
                    .call(|reply| Command::RemovePort { id, reply })
                    .is_err();
            }
        }
        pl.forget(id);
        if gone {
            return Err(DataplaneGone);
        }
        removed
    }

    pub fn snapshot(&self) -> Result<Snapshot, DataplaneGone> {
        // Held throughout, so no port comes or goes between the shards'
        // answers and the owners they are merged by.
        let pl = self.placement();
        let mut snaps = Vec::with_capacity(self.shards.len());
        for s in self.shards.iter() {
            snaps.push(s.call(|reply| Command::Snapshot { reply })?);
        }
        Ok(merge_snapshots(snaps, |id| pl.owner_of(id)))
    }

    pub fn conntrack(&self) -> Result<Vec<crate::nat::FlowReport>, DataplaneGone> {
        let mut all = Vec::new();
        for s in self.shards.iter() {
            all.extend(s.call(|reply| Command::Conntrack { reply })?);
        }
        Ok(all)
    }

    /// Forward ids are the owner shard's own, times the shard count, plus
    /// the shard: unique across shards, and they say where to go.
    pub fn add_forwards(
        &self,
        port: PortId,
        forwards: Vec<(std::os::fd::OwnedFd, crate::publish::Mapping)>,
    ) -> Result<Result<Vec<u32>, String>, DataplaneGone> {
        // Held, so the port cannot move or go before its owner has them.
        let pl = self.placement();
        let Some(owner) = pl.owner_of(port) else {
            return Ok(Err(format!("port {port} is not attached")));
        };
        let n = self.shards.len() as u32;
        let r = self.shards[owner].call(|reply| Command::AddForwards {
            port,
            forwards,
            reply,
        })?;
        Ok(r.map(|ids| ids.into_iter().map(|i| i * n + owner as u32).collect()))
    }

    /// Each shard's own ids, keyed by shard, and each id's place in `ids`.
    fn by_shard(&self, ids: &[u32]) -> BTreeMap<usize, Vec<(usize, u32)>> {
        let n = self.shards.len() as u32;
        let mut m: BTreeMap<usize, Vec<(usize, u32)>> = BTreeMap::new();
        for (i, id) in ids.iter().enumerate() {
            m.entry((id % n) as usize).or_default().push((i, id / n));
        }
        m
    }

    pub fn remove_forwards(&self, ids: Vec<u32>) -> Result<(), DataplaneGone> {
        for (shard, local) in self.by_shard(&ids) {
            let ids = local.into_iter().map(|(_, id)| id).collect();
            self.shards[shard].call(|reply| Command::RemoveForwards { ids, reply })?;
        }
        Ok(())
    }

    pub fn forward_counts(&self, ids: Vec<u32>) -> Result<Vec<Option<(u64, u64)>>, DataplaneGone> {
        let mut out = vec![None; ids.len()];
        for (shard, local) in self.by_shard(&ids) {
            let query = local.iter().map(|(_, id)| *id).collect();
            let counts =
                self.shards[shard].call(|reply| Command::ForwardCounts { ids: query, reply })?;
            for ((i, _), c) in local.into_iter().zip(counts) {
                out[i] = c;
            }
        }
        Ok(out)
    }

    /// The name table is shared by all shards: one of them writes it.
    pub fn set_names(
        &self,
        net: NetworkId,
        ip: std::net::IpAddr,
        container: String,
        names: Vec<String>,
    ) -> Result<(), DataplaneGone> {
        self.shards[0].call(|reply| Command::SetNames {
            net,
            ip,
            container,
            names,
            reply,
        })
    }

    /// Starts a capture on every shard: each writes to the ports it holds
    /// (its own and the others'), so every shard offers them.
    pub fn add_tap(&self, tap: std::sync::Arc<tap::Tap>) -> Result<(), DataplaneGone> {
        for s in self.shards.iter() {
            let t = tap.clone();
            s.call(|reply| Command::AddTap { tap: t, reply })?;
        }
        Ok(())
    }

    /// Ends capture `id` on every shard.
    pub fn remove_tap(&self, id: u64) -> Result<(), DataplaneGone> {
        for s in self.shards.iter() {
            s.call(|reply| Command::RemoveTap { id, reply })?;
        }
        Ok(())
    }

    /// The resolvers the embedded DNS forwards an endpoint's queries to
    /// (`run --dns`), in the shared name table; empty: the host's.
    pub fn set_resolvers(
        &self,
        net: NetworkId,
        ip: std::net::IpAddr,
        resolvers: Vec<std::net::SocketAddr>,
    ) -> Result<(), DataplaneGone> {
        self.shards[0].call(|reply| Command::SetResolvers {
            net,
            ip,
            resolvers,
            reply,
        })
    }

    /// Sends a frame out of a port, without waiting.
    pub fn send_frame(&self, port: PortId, frame: Vec<u8>) {
        let owner = self.placement().owner_of(port).unwrap_or(0);
        self.shards[owner].post(Command::SendFrame { port, frame });
    }

    pub fn shutdown(&self) {
        for s in self.shards.iter() {
            // Waits for room: a shutdown must not be dropped.
            if s.tx.send(Command::Shutdown).is_ok() {
                let _ = s.waker.wake();
            }
        }
    }
}

/// One snapshot from the shards': a port's state and rx side come from
/// its owner, its tx counters from every shard that sent to it; FDB copies
/// are joined (a pinned entry, else the freshest); counters are summed.
fn merge_snapshots(
    mut snaps: Vec<Snapshot>,
    owner_of: impl Fn(PortId) -> Option<usize>,
) -> Snapshot {
    if snaps.len() == 1 {
        return snaps.pop().expect("one");
    }
    let mut ports: BTreeMap<PortId, PortReport> = BTreeMap::new();
    for (shard, snap) in snaps.iter_mut().enumerate() {
        for p in snap
            .ports
            .iter_mut()
            .filter(|p| owner_of(p.id) == Some(shard))
        {
            p.shard = shard;
            ports.insert(p.id, p.clone());
        }
    }
    let mut out = Snapshot::default();
    let mut nets: Vec<NetworkReport> = Vec::new();
    for (shard, snap) in snaps.into_iter().enumerate() {
        for p in snap.ports {
            if owner_of(p.id) != Some(shard) {
                if let Some(have) = ports.get_mut(&p.id) {
                    add_port_counters(&mut have.counters, &p.counters);
                }
            }
        }
        for n in snap.networks {
            match nets.iter_mut().find(|m| m.name == n.name) {
                None => nets.push(n),
                Some(m) => merge_network(m, n),
            }
        }
        out.nat.add(&snap.nat);
        out.dns.add(&snap.dns);
        out.nat_flows += snap.nat_flows;
        out.fdb_sync_dropped += snap.fdb_sync_dropped;
        out.udp_coalesced += snap.udp_coalesced;
    }
    out.ports = ports.into_values().collect();
    out.networks = nets;
    out
}

fn add_port_counters(
    into: &mut crate::stats::PortCountersReport,
    o: &crate::stats::PortCountersReport,
) {
    into.rx_packets += o.rx_packets;
    into.rx_bytes += o.rx_bytes;
    into.tx_packets += o.tx_packets;
    into.tx_bytes += o.tx_bytes;
    for (k, v) in &o.drops {
        *into.drops.entry(k.clone()).or_insert(0) += v;
    }
}

fn merge_network(into: &mut NetworkReport, o: NetworkReport) {
    let mut rows: BTreeMap<String, FdbRow> = std::mem::take(&mut into.fdb)
        .into_iter()
        .map(|r| (r.mac.clone(), r))
        .collect();
    for row in o.fdb {
        match rows.get_mut(&row.mac) {
            None => {
                rows.insert(row.mac.clone(), row);
            }
            Some(r) if !r.is_static && (row.is_static || row.age_secs < r.age_secs) => *r = row,
            Some(_) => {}
        }
    }
    into.fdb = rows.into_values().collect();
    into.fdb_counters.add(&o.fdb_counters);
    into.gateway.add(&o.gateway);
}

/// What the data path is started with.
#[derive(Debug, Clone)]
pub struct DataplaneConfig {
    /// Shards (threads), 1..=[`MAX_SHARDS`].
    pub threads: usize,
    pub max_ports: usize,
    pub batch_size: usize,
    /// The NAT of all shards together: `max_flows` is split between them.
    pub nat: NatConfig,
    /// Where the embedded DNS forwards what it does not answer (one list
    /// for every shard, replaced when the host's resolv.conf changes).
    pub dns_upstreams: crate::dns::Upstreams,
    /// What each port may spend per second (per shard: a port is read by
    /// one shard, which alone charges it).
    pub source_limits: crate::ratelimit::SourceLimits,
}

/// The running data path threads.
pub struct Dataplane {
    handle: DataplaneHandle,
    threads: Vec<JoinHandle<()>>,
}

impl Dataplane {
    /// Starts the shards with an empty switch each.
    pub fn start(cfg: DataplaneConfig, events: Option<Sender<Event>>) -> io::Result<Dataplane> {
        let n = cfg.threads.clamp(1, MAX_SHARDS);
        let names = crate::dns::shared_names();
        let mut nat = cfg.nat.clone();
        nat.max_flows = (nat.max_flows / n).max(1);
        let mut polls = Vec::with_capacity(n);
        let mut links = Vec::with_capacity(n);
        let mut cmd_rx: Vec<Receiver<Command>> = Vec::with_capacity(n);
        let mut sync: Vec<(Sender<Learned>, Receiver<Learned>)> = Vec::with_capacity(n);
        for _ in 0..n {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), waker_token())?);
            let (tx, rx) = bounded(COMMAND_QUEUE);
            links.push(ShardLink { tx, waker });
            cmd_rx.push(rx);
            sync.push(bounded(SYNC_QUEUE));
            polls.push(poll);
        }
        let mut threads = Vec::with_capacity(n);
        let handle = DataplaneHandle {
            shards: links.clone().into(),
            placement: Arc::new(Mutex::new(Placement {
                load: vec![0; n],
                ..Placement::default()
            })),
        };
        // Everything that can fail before any thread starts, so a failure
        // leaves nothing running.
        let registries = polls
            .iter()
            .map(|p| p.registry().try_clone())
            .collect::<io::Result<Vec<_>>>()?;
        for (i, ((poll, rx), registry)) in polls.into_iter().zip(cmd_rx).zip(registries).enumerate()
        {
            let mut switch = Switch::with_names(
                cfg.max_ports,
                nat.clone(),
                cfg.dns_upstreams.clone(),
                names.clone(),
            );
            switch.set_registry(registry);
            switch.set_source_limits(cfg.source_limits);
            if let Some(e) = &events {
                switch.set_events(e.clone());
            }
            let peers: Vec<Peer> = (0..n)
                .filter(|j| *j != i)
                .map(|j| Peer {
                    sync: sync[j].0.clone(),
                    waker: links[j].waker.clone(),
                })
                .collect();
            let sync_rx = sync[i].1.clone();
            let batch = cfg.batch_size.max(1);
            let name = if n == 1 {
                "lanyard-dataplane".to_string()
            } else {
                format!("lanyard-dp{i}")
            };
            let spawned = std::thread::Builder::new().name(name).spawn(move || {
                let mut lp = Loop::new(poll, rx, sync_rx, peers, switch, batch);
                lp.run();
            });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // Stop the shards already running before failing.
                    handle.shutdown();
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(e);
                }
            }
        }
        Ok(Dataplane { handle, threads })
    }

    pub fn handle(&self) -> DataplaneHandle {
        self.handle.clone()
    }

    /// False once any shard has ended (stopped, or died of a panic): a
    /// data path missing a shard has ports nobody reads.
    pub fn is_running(&self) -> bool {
        !self.threads.is_empty() && self.threads.iter().all(|t| !t.is_finished())
    }

    /// Stops the shards and waits for them; ports are closed.
    pub fn stop(mut self) {
        self.join();
    }

    fn join(&mut self) {
        self.handle.shutdown();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shard's counters reach the merged snapshot: the NAT's, the
    /// DNS's and the flow counts (a section left out reads as zeros in
    /// `lanyard stats` as soon as a daemon runs two shards).
    #[test]
    fn merged_snapshots_sum_every_shards_counters() {
        let shard = |n: u64| {
            let mut s = Snapshot::default();
            s.nat.udp_flows = n;
            s.dns.rate_limited = 10 * n;
            s.dns.tcp_queries = 100 * n;
            s.nat_flows = n as usize;
            s.fdb_sync_dropped = n;
            s
        };
        let m = merge_snapshots(vec![shard(1), shard(2)], |_| None);
        assert_eq!(m.nat.udp_flows, 3);
        assert_eq!(m.dns.rate_limited, 30);
        assert_eq!(m.dns.tcp_queries, 300);
        assert_eq!(m.nat_flows, 3);
        assert_eq!(m.fdb_sync_dropped, 3);
    }
}
