#[gpm::test(start_paused = true, worker_threads = 2)]
async fn paused() {}

fn main() {}
