//! The archive's compression (none, gzip, zstd: each one the kernel unpacks with CONFIG_RD_*)
//! and the decompression of kernel modules (.ko.xz, .ko.gz, .ko.zst). Pure Rust, and
//! deterministic: gzip's header has mtime 0 and no file name.

use std::io::{Read, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compress {
    None,
    Gzip,
    Zstd,
}

impl Compress {
    pub fn parse(s: &str) -> Option<Compress> {
        match s {
            "none" => Some(Compress::None),
            "gzip" => Some(Compress::Gzip),
            "zstd" => Some(Compress::Zstd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compress::None => "none",
            Compress::Gzip => "gzip",
            Compress::Zstd => "zstd",
        }
    }

    pub fn apply(self, data: Vec<u8>) -> Vec<u8> {
        match self {
            Compress::None => data,
            Compress::Gzip => {
                // GzBuilder's header: mtime 0, no name, OS "unknown": the same bytes every time.
                let mut enc = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
                enc.write_all(&data).and_then(|()| enc.finish()).unwrap_or_default()
            }
            // ruzstd's best level so far (about zstd -1): one frame the kernel's unzstd reads.
            Compress::Zstd => ruzstd::encoding::compress_to_vec(&data[..], ruzstd::encoding::CompressionLevel::Fastest),
        }
    }
}

/// A module file's suffixes, with the decompressor for each.
pub const MODULE_SUFFIXES: [&str; 4] = [".ko", ".ko.xz", ".ko.gz", ".ko.zst"];

/// A module file's bytes as the kernel's finit_module(2) takes them without
/// CONFIG_MODULE_DECOMPRESS: plain ELF.
pub fn decompress_module(name: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let result = if name.ends_with(".ko") {
        return Ok(data.to_vec());
    } else if name.ends_with(".ko.xz") {
        lzma_rs::xz_decompress(&mut &data[..], &mut out).map_err(|e| format!("{e:?}"))
    } else if name.ends_with(".ko.gz") {
        flate2::read::GzDecoder::new(data).read_to_end(&mut out).map(drop).map_err(|e| e.to_string())
    } else if name.ends_with(".ko.zst") {
        ruzstd::decoding::StreamingDecoder::new(data)
            .map_err(|e| e.to_string())
            .and_then(|mut d| d.read_to_end(&mut out).map(drop).map_err(|e| e.to_string()))
    } else {
        return Err(format!("{name}: not a module file"));
    };
    result.map_err(|e| format!("{name}: cannot decompress: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect()
    }

    #[test]
    fn gzip_and_zstd_round_trip_and_are_deterministic() {
        let data = sample();
        for c in [Compress::Gzip, Compress::Zstd] {
            let packed = c.apply(data.clone());
            assert!(packed.len() < data.len() / 4, "{} compresses", c.name());
            assert_eq!(packed, c.apply(data.clone()), "{}: the same bytes twice", c.name());
            let suffix = if c == Compress::Gzip { ".ko.gz" } else { ".ko.zst" };
            assert_eq!(decompress_module(suffix, &packed).unwrap(), data);
        }
        let gz = Compress::Gzip.apply(data.clone());
        // ID1 ID2 CM FLG, MTIME = 0, XFL, OS.
        assert_eq!(&gz[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        assert_eq!(Compress::None.apply(data.clone()), data);
    }

    #[test]
    fn the_command_line_tools_read_them() {
        // gzip(1) and zstd(1), the reference decoders, read what we write.
        let data = sample();
        for (c, tool) in [(Compress::Gzip, "gzip"), (Compress::Zstd, "zstd")] {
            let mut child = std::process::Command::new(tool)
                .args(["-dc"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("{tool}: {e} (apt-get install {tool})"));
            let packed = c.apply(data.clone());
            let mut stdin = child.stdin.take().unwrap();
            let writer = std::thread::spawn(move || stdin.write_all(&packed).unwrap());
            let out = child.wait_with_output().unwrap();
            writer.join().unwrap();
            assert!(out.status.success(), "{tool}");
            assert!(out.stdout == data, "{tool} -dc gives the input back");
        }
    }

    #[test]
    fn xz_modules_from_xz() {
        // xz(1) makes the .ko.xz, as kernel builds do (CONFIG_MODULE_COMPRESS_XZ: xz --check=crc32).
        let data = sample();
        let out = std::process::Command::new("sh")
            .args(["-c", "xz --check=crc32 --lzma2=dict=1MiB -c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                let mut stdin = c.stdin.take().unwrap();
                let d = data.clone();
                let w = std::thread::spawn(move || stdin.write_all(&d).unwrap());
                let out = c.wait_with_output();
                w.join().unwrap();
                out
            })
            .expect("xz (apt-get install xz-utils)");
        assert!(out.status.success());
        assert_eq!(decompress_module("m.ko.xz", &out.stdout).unwrap(), data);
        assert!(decompress_module("m.ko.xz", &out.stdout[..out.stdout.len() / 2]).unwrap_err().contains("cannot decompress"));
        assert_eq!(decompress_module("m.ko", b"plain").unwrap(), b"plain");
        assert!(decompress_module("m.txt", b"").is_err());
        assert!(decompress_module("m.ko.gz", b"not gzip").is_err());
        assert!(decompress_module("m.ko.zst", b"not zstd").is_err());
    }
}
