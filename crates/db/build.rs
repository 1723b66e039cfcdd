//! `sqlx::migrate!` embeds `migrations/` at compile time; rebuild when a file there is added.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
