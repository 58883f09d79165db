fn main() {
    // sqlx::migrate! embeds the folder at compile time; without this a new migration
    // would silently not be embedded until something else changed.
    println!("cargo:rerun-if-changed=migrations");
}
