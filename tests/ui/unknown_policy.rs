#[gpm::main(steal_policy = "greedy")]
async fn main() {}
