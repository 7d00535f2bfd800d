//! Counters: what each port received and sent, and every frame dropped,
//! by reason. Plain integers owned by the data path thread; the control
//! plane reads copies of them through a snapshot.

use serde::Serialize;

/// Defines a struct of `u64` counters with `add`, which sums another
/// instance into it (the shards of a data path are reported as one).
macro_rules! counters {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* $field:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize,
        )]
        pub struct $name {
            $($(#[$fm])* pub $field: u64,)*
        }

        impl $name {
            pub fn add(&mut self, o: &$name) {
                $(self.$field += o.$field;)*
            }
        }

        impl $crate::stats::Counters for $name {
            fn each(&self, mut f: impl FnMut(&'static str, u64, &'static [&'static str])) {
                $(f(stringify!($field), self.$field, &[$(stringify!($fm)),*]);)*
            }
        }
    };
}
pub(crate) use counters;

/// A struct of counters made by `counters!`, walked field by field.
pub trait Counters {
    /// Each counter: its name, its value and its attributes as written
    /// (its doc comment among them: [`doc_text`] reads it; the metrics'
    /// help text).
    fn each(&self, f: impl FnMut(&'static str, u64, &'static [&'static str]));
}

/// The doc comment among a field's attributes as `stringify!` wrote them
/// (`doc = r" text"` or `doc = " text"`, one per line), as one line.
pub fn doc_text(attrs: &[&str]) -> String {
    let mut out = String::new();
    for a in attrs {
        let Some(rest) = a.trim_start().strip_prefix("doc") else {
            continue;
        };
        let (Some(first), Some(last)) = (rest.find('"'), rest.rfind('"')) else {
            continue;
        };
        if last <= first {
            continue;
        }
        let line = rest[first + 1..last].trim();
        if !line.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(line);
        }
    }
    out
}

/// Why a frame was dropped. Every drop on the data path has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than an Ethernet header.
    Truncated,
    /// Longer than the network's MTU allows (and not a GSO super-frame), or
    /// filled the whole read buffer.
    Oversize,
    /// The virtio-net header does not fit the frame it describes.
    BadVnetHeader,
    /// Source MAC zero or a group address.
    InvalidSrcMac,
    /// Source MAC other than the endpoint's own (port security).
    SpoofedSrcMac,
    /// Source IPv4 address other than the endpoint's own (port security).
    SpoofedSrcIp,
    /// ARP claiming a MAC or IPv4 address that is not the endpoint's own.
    SpoofedArp,
    /// An EtherType an endpoint port may not send (VLAN tags, ...).
    EtherTypeNotAllowed,
    /// Unicast to a MAC learned on the port it came in on: never hairpinned.
    DstIsIngress,
    /// An IPv4/ARP packet for the gateway that does not parse.
    MalformedPacket,
    /// An ICMP message for the gateway with a wrong checksum.
    BadChecksum,
    /// An IPv4 fragment for the gateway (it does not reassemble).
    Fragment,
    /// Routed to the gateway for a destination it cannot reach.
    NoRoute,
    /// For the gateway's address on a protocol or port it does not serve.
    NotServed,
    /// An ICMP error suppressed by the gateway's rate limit.
    IcmpRateLimited,
    /// A GSO super-frame bound for a port without offloads that could not be
    /// cut into segments.
    SegmentationFailed,
    /// The egress port's queue was full.
    TxQueueFull,
    /// The egress port failed to send.
    TxError,
    /// A new NAT flow over the container's flow limit.
    FlowLimit,
    /// A TCP segment with impossible flags or outside the connection.
    BadSegment,
    /// A TCP segment (not a SYN) for no known connection.
    NoFlow,
    /// The host refused a socket for a NAT flow.
    HostSocketFailed,
    /// ICMP echo to the world while the host allows no ping sockets.
    IcmpUnavailable,
    /// Over a per-client rate limit (DNS queries).
    RateLimited,
    /// A DHCP server message from an endpoint (only the gateway serves DHCP).
    RogueDhcpServer,
    /// Routed to an address the host treats as its own loopback
    /// (127.0.0.0/8, 0.0.0.0/8): never connected to as given.
    HostLoopback,
    /// A DHCP message the control plane could not take (too long for an
    /// event, or its queue was full).
    DhcpDropped,
    /// A Router Advertisement or Redirect from an endpoint (RA guard: only
    /// the gateway routes; a container announcing itself as a router would
    /// take its neighbours' traffic).
    RogueRouter,
    /// Neighbor Discovery claiming a link-layer address that is not the
    /// endpoint's own, or NDP in a fragment (which RFC 6980 forbids).
    SpoofedNd,
    /// A new NAT flow over its container's new-flows-per-second budget
    /// (`[nat] new_flows_per_sec`): dropped, as a full SYN queue drops;
    /// the container's stack retries.
    FlowRateLimited,
    /// A broadcast, multicast or unknown-unicast frame over its port's
    /// flood budget (`[limits] floods_per_sec`): not flooded to the
    /// network's other ports (storm control).
    FloodLimited,
    /// A request the gateway answers (ARP, echo, Neighbor or Router
    /// Solicitation, TCP to a port it does not serve) over its sender's
    /// budget of replies.
    ReplyRateLimited,
    /// A DHCP message over its port's budget of messages to the control
    /// plane.
    DhcpRateLimited,
    /// A DNS query to be forwarded while its sender already has its share
    /// of the pending queries waiting.
    DnsPendingLimit,
    /// A new NAT flow while the table is full of flows that may not be
    /// closed for it (established connections, answered UDP).
    FlowTableFull,
}

impl DropReason {
    pub const COUNT: usize = 35;
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::Oversize,
        DropReason::BadVnetHeader,
        DropReason::InvalidSrcMac,
        DropReason::SpoofedSrcMac,
        DropReason::SpoofedSrcIp,
        DropReason::SpoofedArp,
        DropReason::EtherTypeNotAllowed,
        DropReason::DstIsIngress,
        DropReason::MalformedPacket,
        DropReason::BadChecksum,
        DropReason::Fragment,
        DropReason::NoRoute,
        DropReason::NotServed,
        DropReason::IcmpRateLimited,
        DropReason::SegmentationFailed,
        DropReason::TxQueueFull,
        DropReason::TxError,
        DropReason::FlowLimit,
        DropReason::BadSegment,
        DropReason::NoFlow,
        DropReason::HostSocketFailed,
        DropReason::IcmpUnavailable,
        DropReason::RateLimited,
        DropReason::RogueDhcpServer,
        DropReason::HostLoopback,
        DropReason::DhcpDropped,
        DropReason::RogueRouter,
        DropReason::SpoofedNd,
        DropReason::FlowRateLimited,
        DropReason::FloodLimited,
        DropReason::ReplyRateLimited,
        DropReason::DhcpRateLimited,
        DropReason::DnsPendingLimit,
        DropReason::FlowTableFull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::Oversize => "oversize",
            DropReason::BadVnetHeader => "bad_vnet_header",
            DropReason::InvalidSrcMac => "invalid_src_mac",
            DropReason::SpoofedSrcMac => "spoofed_src_mac",
            DropReason::SpoofedSrcIp => "spoofed_src_ip",
            DropReason::SpoofedArp => "spoofed_arp",
            DropReason::EtherTypeNotAllowed => "ethertype_not_allowed",
            DropReason::DstIsIngress => "dst_is_ingress",
            DropReason::MalformedPacket => "malformed_packet",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::Fragment => "fragment",
            DropReason::NoRoute => "no_route",
            DropReason::NotServed => "not_served",
            DropReason::IcmpRateLimited => "icmp_rate_limited",
            DropReason::SegmentationFailed => "segmentation_failed",
            DropReason::TxQueueFull => "tx_queue_full",
            DropReason::TxError => "tx_error",
            DropReason::FlowLimit => "flow_limit",
            DropReason::BadSegment => "bad_segment",
            DropReason::NoFlow => "no_flow",
            DropReason::HostSocketFailed => "host_socket_failed",
            DropReason::IcmpUnavailable => "icmp_unavailable",
            DropReason::RateLimited => "rate_limited",
            DropReason::RogueDhcpServer => "rogue_dhcp_server",
            DropReason::HostLoopback => "host_loopback",
            DropReason::DhcpDropped => "dhcp_dropped",
            DropReason::RogueRouter => "rogue_router",
            DropReason::SpoofedNd => "spoofed_nd",
            DropReason::FlowRateLimited => "flow_rate_limited",
            DropReason::FloodLimited => "flood_limited",
            DropReason::ReplyRateLimited => "reply_rate_limited",
            DropReason::DhcpRateLimited => "dhcp_rate_limited",
            DropReason::DnsPendingLimit => "dns_pending_limit",
            DropReason::FlowTableFull => "flow_table_full",
        }
    }
}

/// Counters of one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub drops: [u64; DropReason::COUNT],
}

// By hand: the standard library derives `Default` for arrays of at most
// 32 elements, and there are more reasons than that.
impl Default for PortCounters {
    fn default() -> Self {
        PortCounters {
            rx_packets: 0,
            rx_bytes: 0,
            tx_packets: 0,
            tx_bytes: 0,
            drops: [0; DropReason::COUNT],
        }
    }
}

impl PortCounters {
    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }

    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Non-zero drop counters by name, for reports.
    pub fn drops_by_name(&self) -> Vec<(&'static str, u64)> {
        DropReason::ALL
            .iter()
            .filter(|r| self.drops[**r as usize] != 0)
            .map(|r| (r.name(), self.drops[*r as usize]))
            .collect()
    }
}

/// A port's counters as reported to the control plane and the CLI.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PortCountersReport {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub drops: std::collections::BTreeMap<String, u64>,
}

impl From<&PortCounters> for PortCountersReport {
    fn from(c: &PortCounters) -> Self {
        PortCountersReport {
            rx_packets: c.rx_packets,
            rx_bytes: c.rx_bytes,
            tx_packets: c.tx_packets,
            tx_bytes: c.tx_bytes,
            drops: c
                .drops_by_name()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_reasons_listed_once_in_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{} out of order", r.name());
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    counters! {
        /// For the test below.
        pub struct Two {
            /// First line
            /// and second.
            one,
            two,
        }
    }

    #[test]
    fn each_counter_comes_with_its_doc_comment() {
        use super::Counters;
        let mut t = Two { one: 1, two: 4 };
        t.add(&Two { one: 2, two: 0 });
        let mut seen = Vec::new();
        t.each(|name, v, attrs| seen.push((name, v, doc_text(attrs))));
        assert_eq!(
            seen,
            [
                ("one", 3, "First line and second.".to_string()),
                ("two", 4, String::new())
            ]
        );
    }

    #[test]
    fn counts_by_name() {
        let mut c = PortCounters::default();
        c.drop(DropReason::SpoofedSrcMac);
        c.drop(DropReason::SpoofedSrcMac);
        assert_eq!(c.dropped(DropReason::SpoofedSrcMac), 2);
        assert_eq!(c.drops_by_name(), vec![("spoofed_src_mac", 2)]);
        assert_eq!(c.total_drops(), 2);
    }
}
