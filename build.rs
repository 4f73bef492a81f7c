//! Passes linker/keel.args to the keel binary when building for a musl target.
fn main() {
    println!("cargo:rerun-if-changed=linker/keel.args");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.ends_with("-linux-musl") {
        return;
    }
    let args = std::fs::read_to_string("linker/keel.args").expect("linker/keel.args");
    for arg in args.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
