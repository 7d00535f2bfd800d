//! The Internet checksum (RFC 1071), its pseudo-header sums, and the
//! incremental update of RFC 1624 used when a header field is rewritten in
//! place.
//!
//! Sums are carried as unfolded `u32` accumulators so that several pieces
//! (pseudo-header, header, payload) can be added before the final fold.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` to a running one's-complement sum (big-endian 16-bit words,
/// an odd trailing byte padded with zero).
#[inline]
pub fn sum(mut acc: u32, data: &[u8]) -> u32 {
    // Sum 32-bit big-endian chunks into a u64 so that carries never overflow
    // for any frame size we handle; this is about 4x fewer iterations than a
    // 16-bit loop.
    let mut wide: u64 = acc as u64;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        wide += u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64;
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        wide += u16::from_be_bytes([rest[i], rest[i + 1]]) as u64;
        i += 2;
    }
    if i < rest.len() {
        wide += (rest[i] as u64) << 8;
    }
    // Fold 64 -> 32 bits keeping the one's-complement carries.
    while wide >> 32 != 0 {
        wide = (wide & 0xffff_ffff) + (wide >> 32);
    }
    acc = wide as u32;
    acc
}

/// Folds an accumulator to 16 bits (not complemented).
#[inline]
pub fn fold(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum field value for `data` summed onto `acc`: the complement of
/// the folded sum.
#[inline]
pub fn finish(acc: u32) -> u16 {
    !fold(acc)
}

/// Checksum of a standalone buffer (IPv4 header, ICMPv4 message).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(0, data))
}

/// True when `data`, including its checksum field, sums to all ones.
#[inline]
pub fn verify(data: &[u8]) -> bool {
    fold(sum(0, data)) == 0xffff
}

/// Sum of the IPv4 pseudo-header used by TCP and UDP.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    let mut acc = 0u32;
    acc += u16::from_be_bytes([s[0], s[1]]) as u32;
    acc += u16::from_be_bytes([s[2], s[3]]) as u32;
    acc += u16::from_be_bytes([d[0], d[1]]) as u32;
    acc += u16::from_be_bytes([d[2], d[3]]) as u32;
    acc += protocol as u32;
    acc += length as u32;
    acc
}

/// Sum of the IPv6 pseudo-header (RFC 8200 section 8.1).
#[inline]
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, length: u32) -> u32 {
    // Fold the address sum first: `sum` may return up to 0xffff_ffff, and
    // the additions below must not overflow.
    let addrs = fold(sum(sum(0, &src.octets()), &dst.octets())) as u32;
    addrs + (length >> 16) + (length & 0xffff) + next_header as u32
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit field changes from `old`
/// to `new`, without touching the rest of the data.
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let acc = (!check as u32) + (!old as u32) + new as u32;
    !fold(acc)
}

/// RFC 1624 for a 32-bit field (an IPv4 address), as two 16-bit updates.
#[inline]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    let c = update16(check, (old >> 16) as u16, (new >> 16) as u16);
    update16(c, old as u16, new as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // The worked example of RFC 1071 section 3: the folded sum is ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn split_sums_equal_whole_sum_on_even_boundaries() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1501).collect();
        let whole = fold(sum(0, &data));
        let split = fold(sum(sum(0, &data[..700]), &data[700..]));
        assert_eq!(whole, split);
    }

    #[test]
    fn verify_accepts_own_checksum() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0, 0, 172, 17, 0, 2, 172,
            17, 0, 1,
        ];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verify(&hdr));
        hdr[3] ^= 1;
        assert!(!verify(&hdr));
    }

    #[test]
    fn ipv6_pseudo_header_never_overflows() {
        // Addresses whose sum reaches 0xffff_fdff before the length is added.
        let src: Ipv6Addr = "fe80::1:2ff:fdfc".parse().unwrap();
        let dst: Ipv6Addr = "fe80::1".parse().unwrap();
        let acc = pseudo_header_v6(src, dst, 17, 65_000);
        let mut manual = 0u64;
        for w in src.octets().chunks(2).chain(dst.octets().chunks(2)) {
            manual += u16::from_be_bytes([w[0], w[1]]) as u64;
        }
        manual += 65_000 + 17;
        while manual >> 16 != 0 {
            manual = (manual & 0xffff) + (manual >> 16);
        }
        assert_eq!(fold(acc) as u64, manual);
        let max: Ipv6Addr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap();
        let _ = pseudo_header_v6(max, max, 255, u32::MAX);
    }

    #[test]
    fn incremental_update_matches_recompute() {
        let mut hdr = [
            0x45, 0x00, 0x05, 0xdc, 0xab, 0xcd, 0x40, 0x00, 0x40, 0x06, 0, 0, 10, 0, 0, 1, 172, 17,
            0, 5,
        ];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        let old = u32::from_be_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]);
        let new = u32::from_be_bytes([192, 168, 77, 9]);
        let updated = update32(c, old, new);
        hdr[12..16].copy_from_slice(&new.to_be_bytes());
        hdr[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(updated, checksum(&hdr));
    }
}
