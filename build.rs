//! Build steps: the built-in configuration compiled (keel-config's compiler) into the form a
//! configuration file read at boot has, and the link arguments and script of the PID 1
//! binary (linker/).
use keel_config::compiler as config;
use std::path::PathBuf;

fn main() {
    compile_services();
    link_args();
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
