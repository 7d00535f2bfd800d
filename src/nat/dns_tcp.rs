//! DNS over TCP at the gateway address (RFC 7766): the fallback a client
//! takes when a UDP answer comes back truncated (many containers sharing an
//! alias), and the transport some resolvers always use.
//!
//! A container's TCP connection to the gateway's port 53 is translated by
//! the NAT like any other; its host socket connects to this server on
//! loopback. The server answers container names from the same `NameTable`
//! the UDP path uses and relays everything else to the upstream resolvers
//! over TCP. Names are per network, so the server must know who is asking:
//! the NAT tells it, keyed by the host socket's local port, right after
//! `connect()` — before the container can have sent a query.
//!
//! One blocking thread per connection, at most `MAX_CONNECTIONS`: DNS over
//! TCP is rare and short-lived, and off the data-path thread a slow
//! upstream never stalls forwarding.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hashbrown::HashMap;

use super::dns::{local_answer, LocalAnswer, NameTable};
use crate::log;
use crate::wire::dns as w;

/// Connections served at once; more are closed at accept.
pub const MAX_CONNECTIONS: usize = 64;
/// A connection with no query for this long is closed (RFC 7766 6.2.3
/// suggests seconds, not minutes).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
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
    pub client: Ipv4Addr,
    pub gateway: Ipv4Addr,
}

/// What the server did, for `lanyard stats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DnsTcpCounters {
    pub connections: u64,
    /// Closed at accept: too many at once, or nobody announced them.
    pub refused: u64,
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
    queries: AtomicU64,
    local_answers: AtomicU64,
    forwarded: AtomicU64,
    upstream_failures: AtomicU64,
    malformed: AtomicU64,
}

struct Shared {
    names: Arc<Mutex<NameTable>>,
    upstreams: Vec<SocketAddr>,
    /// Local port of the NAT's host socket → who it speaks for.
    origins: Mutex<HashMap<u16, (Origin, Instant)>>,
    active: AtomicUsize,
    counters: Counters,
}

/// The server, started on the first TCP query.
pub struct DnsTcp {
    shared: Arc<Shared>,
    addr: OnceLock<Option<SocketAddr>>,
}

impl DnsTcp {
    pub fn new(names: Arc<Mutex<NameTable>>, upstreams: Vec<SocketAddr>) -> DnsTcp {
        DnsTcp {
            shared: Arc::new(Shared {
                names,
                upstreams,
                origins: Mutex::new(HashMap::new()),
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
        let mut o = lock(&self.shared.origins);
        if o.len() >= MAX_ORIGINS {
            // Announced connections that never arrived: drop the oldest.
            if let Some(oldest) = o.iter().min_by_key(|(_, (_, t))| *t).map(|(p, _)| *p) {
                o.remove(&oldest);
            }
        }
        o.insert(port, (origin, Instant::now()));
    }

    pub fn counters(&self) -> DnsTcpCounters {
        let c = &self.shared.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DnsTcpCounters {
            connections: l(&c.connections),
            refused: l(&c.refused),
            queries: l(&c.queries),
            local_answers: l(&c.local_answers),
            forwarded: l(&c.forwarded),
            upstream_failures: l(&c.upstream_failures),
            malformed: l(&c.malformed),
        }
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
        if shared.active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
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
        if let Some((o, _)) = lock(&shared.origins).remove(&port) {
            return Some(o);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn serve(mut conn: TcpStream, shared: &Shared) {
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
    let _ = conn.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = conn.set_write_timeout(Some(IDLE_TIMEOUT));
    let _ = conn.set_nodelay(true);
    let mut upstream: Option<TcpStream> = None;
    let mut query = vec![0u8; u16::MAX as usize];
    let mut answer = vec![0u8; u16::MAX as usize + 2];
    loop {
        let Some(len) = read_message(&mut conn, &mut query) else {
            return;
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
        let local = local_answer(
            &mut lock(&shared.names),
            origin.net,
            origin.client,
            origin.gateway,
            &parsed,
            &mut answer[2..],
        );
        let n = match local {
            LocalAnswer::Answer(n) | LocalAnswer::NxDomain(n) if n > 0 => {
                bump(&shared.counters.local_answers);
                n
            }
            LocalAnswer::Answer(_) | LocalAnswer::NxDomain(_) => {
                bump(&shared.counters.malformed);
                return;
            }
            LocalAnswer::Forward => match forward(shared, &mut upstream, q, &mut answer[2..]) {
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
            },
        };
        answer[..2].copy_from_slice(&(n as u16).to_be_bytes());
        if conn.write_all(&answer[..n + 2]).is_err() {
            return;
        }
    }
}

/// Reads one length-prefixed message into `buf`; None at end of stream,
/// on timeout or error.
fn read_message(s: &mut TcpStream, buf: &mut [u8]) -> Option<usize> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let len = u16::from_be_bytes(len) as usize;
    s.read_exact(&mut buf[..len]).ok()?;
    Some(len)
}

/// Asks the upstreams in turn over one kept connection; the answer's
/// length in `out`.
fn forward(
    shared: &Shared,
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
    for to in &shared.upstreams {
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
    let n = read_message(s, out)?;
    (n >= 12 && out[0..2] == q[0..2] && out[2] & 0x80 != 0).then_some(n)
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
        let n = read_message(s, &mut buf).expect("an answer");
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
            t.network_added(1, "172.17.0.0/16".parse().unwrap());
            for i in 0..100u8 {
                let ip = Ipv4Addr::new(172, 17, 1, i);
                t.add(1, ip, &format!("c{i}"), &[format!("c{i}"), "many".into()]);
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
                client: Ipv4Addr::new(172, 17, 1, 0),
                gateway: gw,
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
}
