// `sqlx::migrate!` embeds `migrations/` at build time, but Cargo does not know the macro read it:
// without this, a new migration file would not be picked up until something else changed.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
