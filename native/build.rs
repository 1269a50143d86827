//! Builds the small C shim that silences ALSA's stderr diagnostics on Linux (see
//! `src/alsa_quiet.c`); a C-variadic error handler cannot be written in stable Rust.

fn main() {
    println!("cargo:rerun-if-changed=src/alsa_quiet.c");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        cc::Build::new()
            .file("src/alsa_quiet.c")
            .compile("native_alsa_quiet");
        println!("cargo:rustc-link-lib=dylib=asound");
    }
}
