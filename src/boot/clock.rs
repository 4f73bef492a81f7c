//! The clock floor's decision: keel's build time (build.rs: SOURCE_DATE_EPOCH, else the
//! commit time of the checkout, else a fixed date; see README.md) is a lower bound of the
//! real time on any machine that runs this binary.

/// Seconds since 1970 when this keel was built, as build.rs decided.
pub const BUILD_TIME: u64 = decimal(env!("KEEL_BUILD_TIME").as_bytes());

/// The time to set the clock to, if `now` (seconds since 1970; a clock before 1970 counts
/// as 0) is before `floor`; never earlier than `now`.
pub const fn raised(now: u64, floor: u64) -> Option<u64> {
    if now < floor { Some(floor) } else { None }
}

/// build.rs writes plain digits; anything else fails the build here.
const fn decimal(s: &[u8]) -> u64 {
    assert!(!s.is_empty(), "KEEL_BUILD_TIME is empty");
    let mut n: u64 = 0;
    let mut i = 0;
    while i < s.len() {
        assert!(s[i].is_ascii_digit(), "KEEL_BUILD_TIME is not seconds");
        n = n * 10 + (s[i] - b'0') as u64;
        i += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_an_early_clock_and_never_lowers_a_later_one() {
        let floor = 1_796_161_224; // 2026-12-01
        assert_eq!(raised(86_400, floor), Some(floor), "1970-01-02");
        assert_eq!(raised(floor - 1, floor), Some(floor));
        assert_eq!(raised(floor, floor), None);
        assert_eq!(raised(floor + 1, floor), None);
        assert_eq!(raised(u64::MAX, floor), None);
    }

    #[test]
    fn the_build_time_is_plausible() {
        // After 2024-01-01 (build.rs's fixed date is later) and not after this test runs.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert!(BUILD_TIME > 1_704_067_200 && BUILD_TIME <= now, "{BUILD_TIME}");
        assert_eq!(decimal(b"0"), 0);
        assert_eq!(decimal(b"1796161224"), 1_796_161_224);
    }
}
