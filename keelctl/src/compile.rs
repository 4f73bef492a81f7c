//! `keelctl check FILE` and `keelctl compile FILE -o OUT`: the configuration compiler of
//! keel's own build (keel-config), run on the host, s6-rc style: definitions validated and
//! compiled here, PID 1 reads only the compiled form (`/etc/keel/keel.db`).

use keel_config::compiler::{self, Config};
use keel_config::db::{self, Db};
use std::io::Write;
use std::path::Path;

/// The compiled bytes, read back as PID 1 reads them: what passes here boots. The compiler
/// already refuses everything PID 1 would; only the file's total size (64 KiB) is left.
pub fn emit_checked(config: &Config) -> Result<Vec<u8>, String> {
    let bytes = db::emit(config);
    match Db::parse(&bytes) {
        Ok(_) => Ok(bytes),
        Err(db::Error::TooLong) => Err(format!(
            "capacity exceeded: the compiled form is {} bytes, more than keel reads ({} bytes)",
            bytes.len(),
            db::MAX_LEN
        )),
        Err(e) => Err(format!("the compiled form does not read back ({}): a bug in keelctl", e.text())),
    }
}

/// Compile FILE: the config, or every error as `FILE:LINE: message` lines.
fn compile_file(file: &Path) -> Result<Vec<u8>, Vec<String>> {
    let shown = file.display().to_string();
    let text = std::fs::read(file).map_err(|e| vec![format!("keelctl: {shown}: {e}")])?;
    let text = String::from_utf8(text).map_err(|e| vec![format!("keelctl: {shown}: not UTF-8 text (byte {})", e.utf8_error().valid_up_to())])?;
    let config = compiler::compile(&text).map_err(|errors| errors.iter().map(|e| e.at(&shown).to_string()).collect::<Vec<_>>())?;
    // The size is the whole file's: it has no line of its own.
    emit_checked(&config).map_err(|why| vec![format!("{shown}: {why}")])
}

/// `keelctl check FILE`: 0 valid, 1 with every error on stderr.
pub fn check(file: &Path) -> i32 {
    match compile_file(file) {
        Ok(_) => 0,
        Err(errors) => {
            errors.iter().for_each(|e| eprintln!("{e}"));
            1
        }
    }
}

/// `keelctl compile FILE -o OUT`.
pub fn compile(file: &Path, out: &Path) -> i32 {
    match compile_file(file) {
        Ok(bytes) => match write_out(out, &bytes) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("keelctl: compile: {e}");
                1
            }
        },
        Err(errors) => {
            errors.iter().for_each(|e| eprintln!("{e}"));
            1
        }
    }
}

/// Write OUT whole or not at all (a temporary file renamed over it); `-` is stdout.
pub fn write_out(out: &Path, bytes: &[u8]) -> Result<(), String> {
    if out == Path::new("-") {
        let mut stdout = std::io::stdout().lock();
        return stdout.write_all(bytes).and_then(|()| stdout.flush()).map_err(|e| format!("stdout: {e}"));
    }
    let name = out.file_name().ok_or_else(|| format!("{}: not a file name", out.display()))?;
    let tmp = out.with_file_name(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, out));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| format!("{}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_bytes_read_back() {
        let config = compiler::compile("[service.a]\nargv = [\"/bin/a\"]\n").unwrap();
        let bytes = emit_checked(&config).unwrap();
        assert_eq!(Db::parse(&bytes).unwrap().service_count(), 1);
        assert_eq!(bytes, emit_checked(&config).unwrap(), "deterministic");
    }

    #[test]
    fn too_big_for_pid1() {
        // 128 services of 16 arguments of 255 bytes: the compiler's capacities, far more
        // than the 64 KiB file PID 1 reads.
        let arg = format!("\"/{}\"", "a".repeat(254));
        let argv = vec![arg; 16].join(", ");
        let text: String = (0..128).map(|i| format!("[service.s{i}]\nargv = [{argv}]\nlog_ring = 256\n")).collect();
        let config = compiler::compile(&text).unwrap();
        let e = emit_checked(&config).unwrap_err();
        assert!(e.starts_with("capacity exceeded: the compiled form is ") && e.ends_with("more than keel reads (65536 bytes)"), "{e}");
    }
}
