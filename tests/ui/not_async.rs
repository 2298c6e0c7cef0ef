#[gpm::main]
fn main() {}
