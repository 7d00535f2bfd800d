//! DNS over TCP at the gateway address (RFC 7766): the fallback a client
//! takes when a UDP answer comes back truncated (many containers sharing an
//! alias), and the transport some resolvers always use.
//!
//! A container's TCP connection to the gateway's port 53 is translated by
//! the NAT like any other; its host socket connects to this server on
//! loopback (the server is a `host::LocalService`, so the NAT knows it only
//! as "a service of the gateway's address"). The server answers container names from the same `NameTable`
//! the UDP path uses and relays everything else to the upstream resolvers
//! over TCP. Names are per network, so the server must know who is asking:
//! the NAT tells it, keyed by the host socket's local port, right after
//! `connect()` — before the container can have sent a query.
//!
//! One blocking thread per connection, at most `MAX_CONNECTIONS`, of which
//! one asking container holds at most `MAX_PER_CLIENT`: DNS over TCP is
//! rare and short-lived, and off the data-path thread a slow upstream
//! never stalls forwarding. A connection ends after `IDLE_TIMEOUT` without
//! a whole query, and in any case `CONNECTION_DEADLINE` after it was
//! accepted: a client trickling a byte now and then cannot keep a slot
//! (RFC 7766 6.1 lets a server close whenever it must). Names not ours
//! are relayed only for askers with a network that has NAT, as over UDP.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hashbrown::HashMap;

use super::names::{local_answer, LocalAnswer, NameTable};
use crate::log;
use crate::wire::dns as w;

/// Connections served at once; more are closed at accept.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections one asking container (network and address) holds at once;
/// more are closed as soon as the asker is known.
pub const MAX_PER_CLIENT: usize = 8;
/// A connection that has not delivered a whole query for this long is
/// closed (RFC 7766 6.2.3 suggests seconds, not minutes).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// No connection lives longer than this, however it trickles.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(30);

/// The server's bounds (the constants above; tests shrink the times).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub per_client: usize,
    pub idle: Duration,
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: MAX_CONNECTIONS,
            per_client: MAX_PER_CLIENT,
            idle: IDLE_TIMEOUT,
            deadline: CONNECTION_DEADLINE,
        }
    }
}
/// Connecting to, and waiting on, one upstream.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);
/// Origins announced but not yet claimed; the oldest go first when full.
const MAX_ORIGINS: usize = 1024;
/// How long a new connection waits for its origin to be announced.
const ORIGIN_WAIT: Duration = Duration::from_secs(1);

/// Who a connection asks for: a container's address on a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub net: u32,
    /// The container's address (of the family it connected over).
    pub client: IpAddr,
}

/// What the server did, for `lanyard stats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DnsTcpCounters {
    pub connections: u64,
    /// Closed at accept: too many at once, or nobody announced them.
    pub refused: u64,
    /// Closed because the asker already held `MAX_PER_CLIENT`.
    pub refused_per_client: u64,
    /// Closed at the idle timeout or the whole-connection deadline.
    pub timed_out: u64,
    pub queries: u64,
    pub local_answers: u64,
    pub forwarded: u64,
    /// No upstream answered: the client got SERVFAIL.
    pub upstream_failures: u64,
    pub malformed: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    refused: AtomicU64,
    refused_per_client: AtomicU64,
    timed_out: AtomicU64,
    queries: AtomicU64,
    local_answers: AtomicU64,
    forwarded: AtomicU64,
    upstream_failures: AtomicU64,
    malformed: AtomicU64,
}

/// Announced origins, bounded: a map from the NAT socket's local port, and
/// the order they came in, so the oldest goes first when full. Both are
/// sized once: `expect` runs on the data path and must not allocate.
struct Origins {
    by_port: HashMap<u16, (Origin, Instant)>,
    order: std::collections::VecDeque<(u16, Instant)>,
}

impl Origins {
    fn new() -> Origins {
        Origins {
            by_port: HashMap::with_capacity(MAX_ORIGINS),
            order: std::collections::VecDeque::with_capacity(MAX_ORIGINS),
        }
    }

    fn insert(&mut self, port: u16, origin: Origin, now: Instant) {
        while self.order.len() >= MAX_ORIGINS || self.by_port.len() >= MAX_ORIGINS {
            // Announced connections that never arrived: the oldest go. An
            // entry claimed (or replaced) since is no longer the same one.
            let Some((p, t)) = self.order.pop_front() else {
                break;
            };
            if self.by_port.get(&p).is_some_and(|(_, at)| *at == t) {
                self.by_port.remove(&p);
            }
        }
        self.by_port.insert(port, (origin, now));
        self.order.push_back((port, now));
    }

    fn claim(&mut self, port: u16) -> Option<Origin> {
        self.by_port.remove(&port).map(|(o, _)| o)
    }
}

struct Shared {
    names: Arc<Mutex<NameTable>>,
    upstreams: super::Upstreams,
    /// Local port of the NAT's host socket → who it speaks for.
    origins: Mutex<Origins>,
    /// Connections held per asker.
    per_client: Mutex<HashMap<(u32, IpAddr), usize>>,
    limits: Limits,
    active: AtomicUsize,
    counters: Counters,
}

/// The server, started on the first TCP query.
pub struct DnsTcp {
    shared: Arc<Shared>,
    addr: OnceLock<Option<SocketAddr>>,
}

impl DnsTcp {
    pub fn new(names: Arc<Mutex<NameTable>>, upstreams: impl Into<super::Upstreams>) -> DnsTcp {
        DnsTcp::with_limits(names, upstreams, Limits::default())
    }

    pub fn with_limits(
        names: Arc<Mutex<NameTable>>,
        upstreams: impl Into<super::Upstreams>,
        limits: Limits,
    ) -> DnsTcp {
        DnsTcp {
            shared: Arc::new(Shared {
                names,
                upstreams: upstreams.into(),
                origins: Mutex::new(Origins::new()),
                per_client: Mutex::new(HashMap::new()),
                limits,
                active: AtomicUsize::new(0),
                counters: Counters::default(),
            }),
            addr: OnceLock::new(),
        }
    }

    /// The server's loopback address, starting it if it is not running.
    pub fn addr(&self) -> Option<SocketAddr> {
        *self.addr.get_or_init(|| match self.start() {
            Ok(a) => Some(a),
            Err(e) => {
                log::warn!("DNS over TCP unavailable: {e}");
                None
            }
        })
    }

    fn start(&self) -> io::Result<SocketAddr> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let shared = self.shared.clone();
        std::thread::Builder::new()
            .name("lanyard-dns-tcp".into())
            .spawn(move || accept_loop(listener, shared))?;
        Ok(addr)
    }

    /// Announces that the connection from local port `port` asks for
    /// `origin`.
    pub fn expect(&self, port: u16, origin: Origin) {
        lock(&self.shared.origins).insert(port, origin, Instant::now());
    }

    pub fn counters(&self) -> DnsTcpCounters {
        let c = &self.shared.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DnsTcpCounters {
            connections: l(&c.connections),
            refused: l(&c.refused),
            refused_per_client: l(&c.refused_per_client),
            timed_out: l(&c.timed_out),
            queries: l(&c.queries),
            local_answers: l(&c.local_answers),
            forwarded: l(&c.forwarded),
            upstream_failures: l(&c.upstream_failures),
            malformed: l(&c.malformed),
        }
    }
}

impl crate::host::LocalService for DnsTcp {
    fn start(&self) -> Option<SocketAddr> {
        self.addr()
    }

    fn connected(&self, local_port: u16, inside: &crate::inside::Inside) {
        self.expect(
            local_port,
            Origin {
                net: inside.net,
                client: inside.ip,
            },
        );
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        bump(&shared.counters.connections);
        if shared.active.fetch_add(1, Ordering::AcqRel) >= shared.limits.max_connections {
            shared.active.fetch_sub(1, Ordering::AcqRel);
            bump(&shared.counters.refused);
            continue;
        }
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("lanyard-dns-tcp-conn".into())
            .spawn(move || {
                serve(conn, &s);
                s.active.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            shared.active.fetch_sub(1, Ordering::AcqRel);
            bump(&shared.counters.refused);
        }
    }
}

/// The origin announced for a peer port, waiting briefly: the NAT
/// announces right after its `connect()` returns, which can be just after
/// the accept.
fn claim_origin(shared: &Shared, port: u16) -> Option<Origin> {
    let deadline = Instant::now() + ORIGIN_WAIT;
    loop {
        if let Some(o) = lock(&shared.origins).claim(port) {
            return Some(o);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A connection's slot in the per-client count, given back on drop.
struct ClientSlot<'a> {
    shared: &'a Shared,
    key: (u32, IpAddr),
}

impl<'a> ClientSlot<'a> {
    fn take(shared: &'a Shared, origin: &Origin) -> Option<ClientSlot<'a>> {
        let key = (origin.net, origin.client);
        let mut m = lock(&shared.per_client);
        let n = m.entry(key).or_insert(0);
        if *n >= shared.limits.per_client {
            return None;
        }
        *n += 1;
        Some(ClientSlot { shared, key })
    }
}

impl Drop for ClientSlot<'_> {
    fn drop(&mut self) {
        let mut m = lock(&self.shared.per_client);
        if let Some(n) = m.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

fn serve(mut conn: TcpStream, shared: &Shared) {
    let deadline = Instant::now() + shared.limits.deadline;
    // Only the NAT's own sockets may ask: anyone else on the host's
    // loopback has no origin and is closed.
    let origin = match conn.peer_addr() {
        Ok(SocketAddr::V4(p)) if p.ip().is_loopback() => claim_origin(shared, p.port()),
        _ => None,
    };
    let Some(origin) = origin else {
        bump(&shared.counters.refused);
        return;
    };
    let Some(_slot) = ClientSlot::take(shared, &origin) else {
        bump(&shared.counters.refused_per_client);
        return;
    };
    let _ = conn.set_nodelay(true);
    serve_stream(&mut conn, shared, origin, deadline);
}

/// What a connection to the server is: a byte stream with timeouts. A
/// `TcpStream` in the server; the fuzzer's stream hands out its input in
/// pieces and times out when told.
pub trait DnsStream: Read + Write {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()>;
    fn set_write_timeout(&mut self, t: Option<Duration>) -> io::Result<()>;
}

impl DnsStream for TcpStream {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, t)
    }

    fn set_write_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, t)
    }
}

impl DnsTcp {
    /// Serves one connection that speaks for `origin` until it ends, its
    /// idle time runs out or its deadline passes (the server's own loop
    /// does this for each accepted connection; tests and the fuzzer call it
    /// with a stream of their own).
    pub fn serve_stream(&self, stream: &mut impl DnsStream, origin: Origin) {
        let deadline = Instant::now() + self.shared.limits.deadline;
        serve_stream(stream, &self.shared, origin, deadline);
    }
}

/// Answers length-prefixed queries (RFC 1035 4.2.2) on `conn` for
/// `origin`.
fn serve_stream(conn: &mut impl DnsStream, shared: &Shared, origin: Origin, deadline: Instant) {
    let limits = shared.limits;
    let mut upstream: Option<TcpStream> = None;
    let mut query = vec![0u8; u16::MAX as usize];
    let mut answer = vec![0u8; u16::MAX as usize + 2];
    loop {
        let len = match read_message(conn, &mut query, deadline, limits.idle) {
            Ok(Some(len)) => len,
            Ok(None) => return,
            Err(TimedOut) => {
                bump(&shared.counters.timed_out);
                return;
            }
        };
        bump(&shared.counters.queries);
        let q = &query[..len];
        let parsed = match w::parse_query(q) {
            Ok(p) => p,
            Err(_) => {
                // Framing is intact but the message is not a query we can
                // answer: RFC 7766 lets us close.
                bump(&shared.counters.malformed);
                return;
            }
        };
        let (local, own) = {
            let mut names = lock(&shared.names);
            let local = local_answer(
                &mut names,
                origin.net,
                origin.client,
                &parsed,
                &mut answer[2..],
            );
            let own = match local {
                LocalAnswer::Forward => names.resolvers_of(origin.net, origin.client),
                _ => None,
            };
            (local, own)
        };
        let n = match local {
            LocalAnswer::Answer(n) | LocalAnswer::NxDomain(n) if n > 0 => {
                bump(&shared.counters.local_answers);
                n
            }
            LocalAnswer::Answer(_) | LocalAnswer::NxDomain(_) => {
                bump(&shared.counters.malformed);
                return;
            }
            LocalAnswer::Forward => {
                match forward(shared, own, &mut upstream, q, &mut answer[2..]) {
                    Some(n) => {
                        bump(&shared.counters.forwarded);
                        n
                    }
                    None => {
                        bump(&shared.counters.upstream_failures);
                        let out = &mut answer[2..];
                        w::build_response(
                            &parsed,
                            w::rcode::SERVFAIL,
                            w::NO_ANSWERS,
                            0,
                            out.len(),
                            out,
                        )
                    }
                }
            }
        };
        answer[..2].copy_from_slice(&(n as u16).to_be_bytes());
        let Some(left) = time_left(deadline) else {
            bump(&shared.counters.timed_out);
            return;
        };
        let _ = conn.set_write_timeout(Some(left.min(limits.idle)));
        if conn.write_all(&answer[..n + 2]).is_err() {
            return;
        }
    }
}

/// The connection ran out of time (idle, or past its deadline).
struct TimedOut;

/// What is left until `deadline`, if anything.
fn time_left(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// Reads exactly `buf.len()` bytes, each read waiting at most the idle
/// timeout and never past `deadline`. `Ok(false)` at a clean end of stream
/// before the first byte.
fn read_full(
    s: &mut impl DnsStream,
    buf: &mut [u8],
    deadline: Instant,
    idle: Duration,
) -> Result<bool, TimedOut> {
    let mut got = 0;
    while got < buf.len() {
        let left = time_left(deadline).ok_or(TimedOut)?;
        if s.set_read_timeout(Some(left.min(idle))).is_err() {
            return Err(TimedOut);
        }
        match s.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(TimedOut)
            }
            Err(_) => return Ok(false),
        }
    }
    Ok(true)
}

/// Reads one length-prefixed query into `buf`, whole within the idle
/// timeout (a query that arrives a byte at a time does not restart the
/// clock) and the connection's deadline. `Ok(None)` at end of stream or
/// on an error.
fn read_message(
    s: &mut impl DnsStream,
    buf: &mut [u8],
    deadline: Instant,
    idle: Duration,
) -> Result<Option<usize>, TimedOut> {
    // The idle clock runs from the first byte we wait for, not per read.
    let deadline = deadline.min(Instant::now() + idle);
    let mut len = [0u8; 2];
    if !read_full(s, &mut len, deadline, idle)? {
        return Ok(None);
    }
    let len = u16::from_be_bytes(len) as usize;
    if !read_full(s, &mut buf[..len], deadline, idle)? {
        return Ok(None);
    }
    Ok(Some(len))
}

/// Reads one length-prefixed message from an upstream into `buf` (its
/// socket's own timeouts bound the wait); None at end of stream, on
/// timeout or error.
fn read_reply(s: &mut TcpStream, buf: &mut [u8]) -> Option<usize> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let len = u16::from_be_bytes(len) as usize;
    s.read_exact(&mut buf[..len]).ok()?;
    Some(len)
}

/// Asks the upstreams (the asker's `own`, `run --dns`, else the host's)
/// in turn over one kept connection; the answer's length in `out`.
fn forward(
    shared: &Shared,
    own: Option<Arc<[SocketAddr]>>,
    upstream: &mut Option<TcpStream>,
    q: &[u8],
    out: &mut [u8],
) -> Option<usize> {
    let mut msg = Vec::with_capacity(q.len() + 2);
    msg.extend_from_slice(&(q.len() as u16).to_be_bytes());
    msg.extend_from_slice(q);
    // The kept connection first (the upstream may have closed it), then
    // each upstream afresh.
    if let Some(s) = upstream.as_mut() {
        if let Some(n) = exchange(s, &msg, q, out) {
            return Some(n);
        }
        *upstream = None;
    }
    let upstreams = own.unwrap_or_else(|| shared.upstreams.get());
    for to in upstreams.iter() {
        let Ok(mut s) = TcpStream::connect_timeout(to, UPSTREAM_TIMEOUT) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(UPSTREAM_TIMEOUT));
        let _ = s.set_write_timeout(Some(UPSTREAM_TIMEOUT));
        if let Some(n) = exchange(&mut s, &msg, q, out) {
            *upstream = Some(s);
            return Some(n);
        }
    }
    None
}

/// One query and its answer; the answer must carry the query's id.
fn exchange(s: &mut TcpStream, msg: &[u8], q: &[u8], out: &mut [u8]) -> Option<usize> {
    s.write_all(msg).ok()?;
    let n = read_reply(s, out)?;
    (n >= w::HEADER_LEN
        && w::header::id(&out[..n]) == w::header::id(q)
        && w::header::is_response(&out[..n]))
    .then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, id: u16) -> Vec<u8> {
        let mut q = vec![0u8; 12];
        q[0..2].copy_from_slice(&id.to_be_bytes());
        q[2] = 0x01; // RD
        q[5] = 1; // QDCOUNT
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q
    }

    fn ask(s: &mut TcpStream, q: &[u8]) -> Vec<u8> {
        let mut m = (q.len() as u16).to_be_bytes().to_vec();
        m.extend_from_slice(q);
        s.write_all(&m).unwrap();
        let mut buf = vec![0u8; 65535];
        let n = read_reply(s, &mut buf).expect("an answer");
        buf.truncate(n);
        buf
    }

    fn ancount(a: &[u8]) -> u16 {
        u16::from_be_bytes([a[6], a[7]])
    }

    #[test]
    fn answers_many_addresses_that_udp_would_truncate() {
        let names = Arc::new(Mutex::new(NameTable::default()));
        let gw = Ipv4Addr::new(172, 17, 0, 1);
        {
            let mut t = names.lock().unwrap();
            t.network_added(1, "172.17.0.0/16".parse().unwrap(), gw, None, false);
            for i in 0..100u8 {
                let ip = Ipv4Addr::new(172, 17, 1, i);
                t.add(
                    1,
                    ip.into(),
                    &format!("c{i}"),
                    &[format!("c{i}"), "many".into()],
                );
            }
        }
        let srv = DnsTcp::new(names, Vec::new());
        let addr = srv.addr().unwrap();
        let mut s = TcpStream::connect(addr).unwrap();
        let port = s.local_addr().unwrap().port();
        srv.expect(
            port,
            Origin {
                net: 1,
                client: Ipv4Addr::new(172, 17, 1, 0).into(),
            },
        );
        let a = ask(&mut s, &query("many", 7));
        assert_eq!(&a[0..2], &7u16.to_be_bytes());
        assert_eq!(a[2] & 0x02, 0, "not truncated");
        assert_eq!(ancount(&a), 100);
        // Same connection, next query: no upstream, so SERVFAIL at once.
        let a = ask(&mut s, &query("example.test", 8));
        assert_eq!(a[3] & 0x0f, w::rcode::SERVFAIL);
        assert_eq!(srv.counters().local_answers, 1);
        assert_eq!(srv.counters().upstream_failures, 1);
    }

    #[test]
    fn strangers_on_loopback_are_closed() {
        let srv = DnsTcp::new(Arc::new(Mutex::new(NameTable::default())), Vec::new());
        let mut s = TcpStream::connect(srv.addr().unwrap()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let q = query("x", 1);
        let mut m = (q.len() as u16).to_be_bytes().to_vec();
        m.extend_from_slice(&q);
        let _ = s.write_all(&m);
        let mut b = [0u8; 2];
        assert_eq!(s.read(&mut b).unwrap_or(0), 0, "closed without answer");
        assert_eq!(srv.counters().refused, 1);
    }

    /// A server with short times, and a client connected to it as `client`.
    fn server(limits: Limits) -> DnsTcp {
        let names = Arc::new(Mutex::new(NameTable::default()));
        names.lock().unwrap().network_added(
            1,
            "172.17.0.0/16".parse().unwrap(),
            Ipv4Addr::new(172, 17, 0, 1),
            None,
            false,
        );
        DnsTcp::with_limits(names, Vec::new(), limits)
    }

    fn connect_as(srv: &DnsTcp, client: u8) -> TcpStream {
        let s = TcpStream::connect(srv.addr().unwrap()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        srv.expect(
            s.local_addr().unwrap().port(),
            Origin {
                net: 1,
                client: Ipv4Addr::new(172, 17, 0, client).into(),
            },
        );
        s
    }

    /// True if the server closed `s` (EOF or reset) within its read timeout.
    fn closed(s: &mut TcpStream) -> bool {
        let mut b = [0u8; 1];
        matches!(s.read(&mut b), Ok(0) | Err(_))
    }

    #[test]
    fn one_asker_cannot_hold_every_slot() {
        let srv = server(Limits {
            max_connections: 64,
            per_client: 3,
            ..Limits::default()
        });
        let mut held: Vec<TcpStream> = (0..3).map(|_| connect_as(&srv, 2)).collect();
        // Each of the three is served.
        for (i, s) in held.iter_mut().enumerate() {
            let a = ask(s, &query("nothing", i as u16));
            assert_eq!(&a[0..2], &(i as u16).to_be_bytes());
        }
        // A fourth from the same asker is closed unanswered...
        let mut fourth = connect_as(&srv, 2);
        let q = query("nothing", 9);
        let mut m = (q.len() as u16).to_be_bytes().to_vec();
        m.extend_from_slice(&q);
        let _ = fourth.write_all(&m);
        assert!(closed(&mut fourth), "over the per-client bound");
        assert_eq!(srv.counters().refused_per_client, 1);
        // ...while another container is still served.
        let mut other = connect_as(&srv, 3);
        assert_eq!(
            &ask(&mut other, &query("nothing", 10))[0..2],
            &10u16.to_be_bytes()
        );
        // A slot given back is free again.
        drop(held.pop());
        std::thread::sleep(Duration::from_millis(100));
        let mut again = connect_as(&srv, 2);
        assert_eq!(
            &ask(&mut again, &query("nothing", 11))[0..2],
            &11u16.to_be_bytes()
        );
    }

    #[test]
    fn a_trickling_client_is_cut_off_at_the_deadline() {
        let srv = server(Limits {
            idle: Duration::from_millis(400),
            deadline: Duration::from_millis(1200),
            ..Limits::default()
        });
        // A prompt client is answered twice on one connection.
        let mut prompt = connect_as(&srv, 2);
        ask(&mut prompt, &query("nothing", 1));
        ask(&mut prompt, &query("nothing", 2));
        // A query sent a byte every 150 ms never completes within the idle
        // time (the clock is per query, not per read).
        let mut slow = connect_as(&srv, 3);
        let q = query("nothing", 3);
        let mut m = (q.len() as u16).to_be_bytes().to_vec();
        m.extend_from_slice(&q);
        let t = Instant::now();
        let mut cut = false;
        for b in &m {
            if slow.write_all(std::slice::from_ref(b)).is_err() {
                cut = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(150));
            if t.elapsed() > Duration::from_secs(3) {
                break;
            }
        }
        assert!(cut || closed(&mut slow), "the trickler was closed");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        // Queries that each come whole keep a connection no longer than
        // its deadline.
        let mut steady = connect_as(&srv, 4);
        let t = Instant::now();
        let mut answered = 0;
        while t.elapsed() < Duration::from_secs(3) {
            let q = query("nothing", answered);
            let mut m = (q.len() as u16).to_be_bytes().to_vec();
            m.extend_from_slice(&q);
            if steady.write_all(&m).is_err() {
                break;
            }
            let mut buf = vec![0u8; 65535];
            if read_reply(&mut steady, &mut buf).is_none() {
                break;
            }
            answered += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(answered >= 2, "served until the deadline: {answered}");
        assert!(
            t.elapsed() < Duration::from_millis(2500),
            "closed at the deadline: {:?}",
            t.elapsed()
        );
        assert!(srv.counters().timed_out >= 2);
    }
}
