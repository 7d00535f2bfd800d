//! Defects the fuzz targets (`fuzz/`) led to, reproduced through the public
//! API; each failed before its fix and stays as a test.

use std::net::{Ipv4Addr, SocketAddr};

use lanyard::dns::NameTable;
use lanyard::host::{FakeIo, HostIo};

/// `FakeIo` answers 0xff once its script is spent, and its read position
/// used to move on past the end while it did: bytes fed after `k` such
/// answers lost their first `k`. (Found writing the `pipeline` target's
/// seeds, which had to hand the fake its script one call at a time until
/// `FakeState::byte` advanced `pos` only when a byte was there.)
#[test]
fn fake_io_takes_bytes_fed_after_its_script_ran_out() {
    let (mut io, h) = FakeIo::new().unwrap();
    let to: SocketAddr = "10.200.0.1:80".parse().unwrap();
    // Spent script: three benign answers (success).
    for _ in 0..3 {
        io.tcp_connect(to).unwrap();
    }
    // The next connect is to be refused (script byte 0)...
    h.feed(&[0]);
    let e = io.tcp_connect(to).map(drop);
    // ...as it is (it was not: the fake read past the byte fed, and
    // succeeded).
    assert_eq!(
        e.map_err(|e| e.raw_os_error()),
        Err(Some(libc::ECONNREFUSED)),
        "the byte fed decides the next call"
    );
}

/// `NameTable::add` with no names records the address for its container
/// (`containers`) but not for lookups (`by_addr`), so `remove` never clears
/// it, and the container counts as on that network from then on: a
/// container only on an internal network, once "added" with no names to a
/// network with NAT, has its queries forwarded upstream. Not reachable from
/// the daemon (`Switch::set_names` turns no names into `remove`, and the
/// control plane always passes the container's name), found by letting the
/// `dns` target's `add` pass an empty list through. The fix is in `add`:
/// after the `remove`, return when `names` is empty.
#[test]
fn adding_no_names_changes_no_containers_networks() {
    let mut t = NameTable::default();
    let gw = |a: &str| a.parse::<Ipv4Addr>().unwrap();
    t.network_added(
        0,
        "172.17.0.0/16".parse().unwrap(),
        gw("172.17.0.1"),
        None,
        false,
    );
    t.network_added(
        1,
        "10.9.0.0/24".parse().unwrap(),
        gw("10.9.0.1"),
        None,
        true,
    );
    let inside = Ipv4Addr::new(10, 9, 0, 2).into();
    t.add(1, inside, "ctr", &["ctr".into()]);
    assert!(!t.may_forward(1, inside), "only on the internal network");
    t.add(0, Ipv4Addr::new(172, 17, 0, 2).into(), "ctr", &[]);
    t.remove(0, Ipv4Addr::new(172, 17, 0, 2).into());
    assert!(
        !t.may_forward(1, inside),
        "no names on network 0, and removed there: still only on the internal network"
    );
}
