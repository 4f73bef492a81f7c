//! keel's resident memory, for the Status reply.

/// Rss from /proc/self/smaps_rollup, in KiB: exact, the kernel walks the page tables.
/// VmRSS (/proc/self/status) is the fallback (kernels before 4.14, or without
/// CONFIG_PROC_PAGE_MONITOR): before 6.2 it lags, each task batching its count over 64 page
/// faults, and PID 1 faults rarely (6.1 showed 4 kB where smaps_rollup had 148). 0 if
/// neither is there.
pub fn rss_kib() -> u32 {
    let mut buf = [0u8; 2048];
    let rollup = crate::file::read_into(c"/proc/self/smaps_rollup", &mut buf).unwrap_or_default();
    if let Some(kib) = kib_field(rollup, b"Rss:") {
        return kib;
    }
    let status = crate::file::read_into(c"/proc/self/status", &mut buf).unwrap_or_default();
    kib_field(status, b"VmRSS:").unwrap_or(0)
}

/// The value of the `key  NNN kB` line in a /proc file.
pub fn kib_field(text: &[u8], key: &[u8]) -> Option<u32> {
    let value = text.split(|&b| b == b'\n').find_map(|l| l.strip_prefix(key))?;
    crate::config::cmdline::parse_u32(value.trim_ascii().strip_suffix(b" kB")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    // keel as PID 1 under Debian 12's kernel (6.1.0-57-amd64), both files at the same moment.
    const SMAPS_ROLLUP: &[u8] = b"00200000-7fff30d8d000 ---p 00000000 00:00 0                              [rollup]
Rss:                 148 kB
Pss:                 141 kB
Pss_Dirty:           140 kB
Pss_Anon:             52 kB
Pss_File:              1 kB
Pss_Shmem:            88 kB
Shared_Clean:          4 kB
Shared_Dirty:          8 kB
Private_Clean:         0 kB
Private_Dirty:       136 kB
Referenced:          148 kB
Anonymous:            52 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
";
    const STATUS_PART: &[u8] = b"VmHWM:\t       4 kB\nVmRSS:\t       4 kB\nRssAnon:\t       4 kB\nRssFile:\t       0 kB\n";

    #[test]
    fn resident_memory_from_a_real_sample() {
        assert_eq!(kib_field(SMAPS_ROLLUP, b"Rss:"), Some(148));
        assert_eq!(kib_field(SMAPS_ROLLUP, b"Pss:"), Some(141));
        assert_eq!(kib_field(STATUS_PART, b"VmRSS:"), Some(4), "what the lagging counter said");
        assert_eq!(kib_field(STATUS_PART, b"Rss:"), None, "RssAnon is not Rss");
        assert_eq!(kib_field(b"", b"Rss:"), None);
        assert_eq!(kib_field(b"Rss: 12 MB\n", b"Rss:"), None);
        assert_eq!(kib_field(b"Rss: lots kB\n", b"Rss:"), None);
    }

    #[test]
    fn this_process_has_a_resident_size() {
        assert!(rss_kib() > 0);
    }
}
