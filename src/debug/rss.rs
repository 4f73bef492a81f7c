//! keel's resident memory, for the Status reply.

/// VmRSS from /proc/self/status, in KiB (0 if unknown).
pub fn rss_kib() -> u32 {
    let mut buf = [0u8; 2048];
    let len = crate::file::read_into(c"/proc/self/status", &mut buf).unwrap_or(0);
    buf[..len]
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"VmRSS:"))
        .and_then(|v| crate::config::cmdline::parse_u32(v.trim_ascii().strip_suffix(b" kB")?))
        .unwrap_or(0)
}
