//! Build steps: the built-in configuration compiled (keel-config's compiler) into the form a
//! configuration file read at boot has, the build time (the clock floor, src/boot/clock.rs),
//! and the link arguments and script of the PID 1 binary (linker/).
use keel_config::compiler as config;
use std::path::PathBuf;

fn main() {
    compile_services();
    build_time();
    link_args();
}

/// When no better time is known: a fixed date (2026-12-01), so the same sources still give
/// the same binary. Only ever moved forward.
const FIXED_BUILD_TIME: u64 = 1_796_083_200;

/// KEEL_BUILD_TIME, a function of the sources only (reproducible builds): SOURCE_DATE_EPOCH
/// if set, else the commit time of the checkout's HEAD, else FIXED_BUILD_TIME.
fn build_time() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let secs = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.trim().parse::<u64>().unwrap_or_else(|_| {
            eprintln!("error: SOURCE_DATE_EPOCH={v:?} is not whole seconds since 1970");
            std::process::exit(1)
        }),
        Err(_) => head_commit_time().unwrap_or(FIXED_BUILD_TIME),
    };
    println!("cargo:rustc-env=KEEL_BUILD_TIME={secs}");
}

/// `git log -1 --format=%ct`, and the files that change when HEAD moves (so a new commit
/// reruns this): HEAD and the branch it names. A path that does not exist is not named, as
/// cargo would rerun the script on every build.
fn head_commit_time() -> Option<u64> {
    let git = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git").args(args).output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        out.status.success().then(|| text.trim().to_string())
    };
    let secs = git(&["log", "-1", "--format=%ct"])?.parse().ok()?;
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    for name in ["HEAD"].into_iter().chain(branch.as_deref()).chain(["packed-refs"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", name]).filter(|p| std::path::Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(secs)
}

fn compile_services() {
    println!("cargo:rerun-if-env-changed=KEEL_CONFIG");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let path = match std::env::var_os("KEEL_CONFIG") {
        Some(p) => manifest.join(p),
        None => manifest.join("src/config/default.toml"),
    };
    println!("cargo:rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("error: {}: {e}", path.display());
        std::process::exit(1)
    });
    let config = config::compile(&text).unwrap_or_else(|errors| {
        for e in errors {
            eprintln!("error: {}", e.at(&path.display().to_string()));
        }
        std::process::exit(1)
    });
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // The built-in configuration: the same compiled form a file at boot has, embedded.
    std::fs::write(out.join("builtin.db"), keel_config::db::emit(&config)).unwrap();
    // Nothing at all: what runs if the built-in configuration were ever refused.
    let empty = config::compile("").expect("an empty configuration is valid");
    std::fs::write(out.join("empty.db"), keel_config::db::emit(&empty)).unwrap();
}

fn link_args() {
    println!("cargo:rerun-if-changed=linker/keel.args");
    println!("cargo:rerun-if-changed=linker/keel.ld");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.ends_with("-linux-musl") {
        return;
    }
    let args = std::fs::read_to_string("linker/keel.args").expect("linker/keel.args");
    for arg in args.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    let script = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("linker/keel.ld");
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
}
