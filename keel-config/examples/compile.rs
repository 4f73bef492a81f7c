//! `cargo run -p keel-config --example compile -- IN OUT`: the compiled form of a
//! configuration, as PID 1 reads it at /etc/keel/keel.db (the QEMU tests' root images; for
//! users, `keelctl compile`). Errors are printed as `IN:LINE: message`, exit status 1.
use keel_config::{compiler, db};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = &args[..] else {
        eprintln!("usage: compile IN OUT");
        std::process::exit(2)
    };
    let text = std::fs::read_to_string(input).unwrap_or_else(|e| {
        eprintln!("{input}: {e}");
        std::process::exit(1)
    });
    let config = compiler::compile(&text).unwrap_or_else(|errors| {
        errors.iter().for_each(|e| eprintln!("{}", e.at(input)));
        std::process::exit(1)
    });
    if let Err(e) = std::fs::write(output, db::emit(&config)) {
        eprintln!("{output}: {e}");
        std::process::exit(1)
    }
}
