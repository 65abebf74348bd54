//! Links the bare-metal kernel with our linker script; host builds (unit tests) skip it.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rerun-if-changed=src/arch/x86_64/link.ld");
    if target == "x86_64-unknown-none" {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-T{dir}/src/arch/x86_64/link.ld");
        println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
        println!("cargo:rustc-link-arg-bins=-static");
        // A plain `cargo build` compiles position-independent code; link it at its fixed
        // address all the same (xtask also passes -C relocation-model=static).
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
