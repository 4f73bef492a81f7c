//! busybox's applet names, for its links in /bin. Read from the binary itself: its
//! applet_names table, the sorted NUL-separated names that start `[`, `[[` (busybox's
//! generated applet_tables.h), so a busybox of another architecture (arm64 on an x86 host)
//! works as well as one that could run here. Only when there is no such table does the
//! builder run `busybox --list`, and only a busybox for this host's machine.

use std::path::Path;

/// Names never linked in /bin: keel's (its applets and /init), busybox's own init, itself.
pub const SKIP: [&str; 6] = ["poweroff", "reboot", "halt", "init", "linuxrc", "busybox"];

/// The applet names in the binary's table, if it has one.
pub fn table(data: &[u8]) -> Option<Vec<String>> {
    let start = data.windows(5).position(|w| w == b"[\0[[\0")?;
    let len = data[start..].windows(2).position(|w| w == b"\0\0")?;
    let names: Vec<String> = data[start..start + len].split(|&b| b == 0).map(|n| String::from_utf8_lossy(n).into_owned()).collect();
    let printable = names.iter().all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic()));
    let sorted = names.windows(2).all(|w| w[0] < w[1]);
    (printable && sorted && names.iter().any(|n| n == "sh")).then_some(names)
}

/// The names to link: the table's, or `--list`'s when it can run here.
pub fn applets(path: &Path, data: &[u8], runs_here: bool) -> Result<Vec<String>, String> {
    let names = match table(data) {
        Some(names) => names,
        None if runs_here => {
            let out = std::process::Command::new(path)
                .arg("--list")
                .output()
                .map_err(|e| format!("{}: no applet name table, and `--list` failed: {e}", path.display()))?;
            String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect()
        }
        None => return Err(format!("{}: no applet name table found (and it cannot run here for --list)", path.display())),
    };
    Ok(names.into_iter().filter(|n| !SKIP.contains(&n.as_str()) && !n.contains('/')).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_what_list_prints() {
        let path = Path::new("/bin/busybox");
        let data = std::fs::read(path).expect("/bin/busybox: apt-get install busybox-static");
        let listed = std::process::Command::new(path).arg("--list").output().unwrap().stdout;
        let listed: Vec<String> = String::from_utf8(listed).unwrap().split_whitespace().map(String::from).collect();
        assert_eq!(table(&data).unwrap(), listed);
        let applets = applets(path, &data, false).unwrap();
        assert!(applets.iter().any(|a| a == "sh") && applets.iter().any(|a| a == "mount"));
        for name in SKIP {
            assert!(!applets.iter().any(|a| a == name), "{name} is keel's");
        }
    }

    #[test]
    fn no_table() {
        assert_eq!(table(b"nothing here"), None);
        // Unsorted or without sh: not the applet table.
        assert_eq!(table(b"x[\0[[\0zz\0ash\0\0"), None);
        assert_eq!(table(b"x[\0[[\0ash\0cat\0\0"), None);
        assert_eq!(table(b"x[\0[[\0ash\0sh\0\0").unwrap(), ["[", "[[", "ash", "sh"]);
        let e = applets(Path::new("/x/busybox"), b"", false).unwrap_err();
        assert_eq!(e, "/x/busybox: no applet name table found (and it cannot run here for --list)");
    }
}
