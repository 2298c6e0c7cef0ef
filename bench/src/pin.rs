//! Pinning for fair benchmark runs: `GPM_BENCH_CPUS=0,1` or `GPM_BENCH_NODE=0`.
//!
//! One setting places three kinds of thread the same way:
//!
//! * **tokio's threads**: [`Tokio::with_workers`](crate::Tokio) pins each thread it starts
//!   (`on_thread_start`) to the next CPU of the list, round-robin (workers first, as tokio
//!   starts them at build time; blocking threads continue the cycle);
//! * **gpm's workers**: through `Builder::placement` with the same [`Placement`] and
//!   `Builder::pin_workers(true)` ([`apply_to_gpm`]), one per CPU of the list;
//! * **the bench driver thread** (criterion's main thread, gpm-lab's driver): pinned to the
//!   *last* CPU of the list by [`BenchPinning::pin_driver`], so with as many CPUs as workers
//!   it shares with the last worker, never with all of them.
//!
//! Linux threads inherit their creator's affinity, so a runtime built on the pinned driver
//! thread would start all its workers on the driver's one CPU. Runtimes are therefore built
//! through [`build_confined`], on a helper thread confined to the whole list (gpm's Ms then
//! pin themselves one by one to their P's PU).
//!
//! The CPU list uses the kernel's cpulist syntax (`0-3,8`); a node is a dense NUMA node
//! index. Both set, an empty or malformed list, an unknown node or a CPU outside this
//! process's affinity are errors naming the variable; [`from_env_or_exit`] prints one and
//! exits with status 2 instead of panicking inside a benchmark.

use gpm_numa::{Placement, Topology};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The variable naming CPUs.
pub const CPUS_VAR: &str = "GPM_BENCH_CPUS";
/// The variable naming a NUMA node.
pub const NODE_VAR: &str = "GPM_BENCH_NODE";

/// Where a benchmark's threads go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchPinning {
    /// The placement, as given (for `Builder::placement`).
    pub placement: Placement,
    /// The CPUs it names on this machine, in order (never empty).
    pub cpus: Vec<usize>,
}

/// Parses the two variables' values (pure: no machine access).
pub fn parse(cpus: Option<&str>, node: Option<&str>) -> Result<Option<Placement>, String> {
    match (cpus, node) {
        (Some(_), Some(_)) => Err(format!("set {CPUS_VAR} or {NODE_VAR}, not both")),
        (None, None) => Ok(None),
        (Some(text), None) => {
            let list = gpm_numa::parse_list(text).map_err(|e| {
                format!("{CPUS_VAR}={text:?} is not a CPU list (e.g. 0,1 or 0-3): {e}")
            })?;
            if list.is_empty() {
                return Err(format!("{CPUS_VAR} is set but names no CPU"));
            }
            Ok(Some(Placement::Cpus(list)))
        }
        (None, Some(text)) => text
            .trim()
            .parse::<usize>()
            .map(|node| Some(Placement::Node(node)))
            .map_err(|_| format!("{NODE_VAR}={text:?} is not a node number (e.g. 0)")),
    }
}

impl BenchPinning {
    /// Reads the environment; `Ok(None)` when neither variable is set.
    pub fn from_env() -> Result<Option<BenchPinning>, String> {
        let var = |name: &str| std::env::var(name).ok();
        let Some(placement) = parse(var(CPUS_VAR).as_deref(), var(NODE_VAR).as_deref())? else {
            return Ok(None);
        };
        BenchPinning::resolve(placement).map(Some)
    }

    /// Resolves `placement` on this machine and checks every CPU is ours to use.
    pub fn resolve(placement: Placement) -> Result<BenchPinning, String> {
        let topology =
            Topology::detect().map_err(|e| format!("cannot read the topology to pin: {e}"))?;
        let wanted = match &placement {
            Placement::Cpus(list) => list.len(),
            _ => topology.num_pus(),
        };
        let mut cpus = placement
            .assign(&topology, wanted)
            .map_err(|e| format!("bad pinning ({CPUS_VAR}/{NODE_VAR}): {e}"))?;
        if let Placement::Node(_) = placement {
            cpus.sort_unstable();
            cpus.dedup();
        }
        let allowed = gpm_numa::allowed_cpus();
        if let Some(bad) = cpus.iter().find(|c| !allowed.contains(c)) {
            return Err(format!(
                "CPU {bad} is not in this process's allowed CPUs ({})",
                gpm_numa::format_list(&allowed)
            ));
        }
        Ok(BenchPinning { placement, cpus })
    }

    /// Pins the calling thread (the bench driver) to the last CPU of the list.
    pub fn pin_driver(&self) -> Result<usize, String> {
        let cpu = *self
            .cpus
            .last()
            .expect("resolve never returns an empty list");
        gpm_numa::pin_current_thread(cpu)
            .map(|()| cpu)
            .map_err(|e| format!("cannot pin the driver thread: {e}"))
    }

    /// A closure for tokio's `on_thread_start` pinning each new thread to the next CPU.
    /// A failure is reported on stderr once per thread (the thread runs unpinned).
    pub fn thread_start_hook(&self) -> impl Fn() + Send + Sync + 'static {
        let cpus = self.cpus.clone();
        let next = Arc::new(AtomicUsize::new(0));
        move || {
            let cpu = cpus[next.fetch_add(1, Ordering::Relaxed) % cpus.len()];
            if let Err(e) = gpm_numa::pin_current_thread(cpu) {
                eprintln!("warning: cannot pin a tokio thread to CPU {cpu}: {e}");
            }
        }
    }

    /// Confines the calling thread to all CPUs of the list (not one of them). Threads it
    /// creates inherit that mask.
    pub fn confine_current_thread(&self) -> Result<(), String> {
        let words = self.cpus.iter().max().map_or(1, |m| m / 64 + 1);
        let mut mask = vec![0u64; words];
        for &cpu in &self.cpus {
            mask[cpu / 64] |= 1 << (cpu % 64);
        }
        // SAFETY: `mask` is a readable buffer of exactly the size passed; the kernel only
        // reads it; pid 0 is the calling thread.
        let rc = unsafe {
            libc::sched_setaffinity(0, words * 8, mask.as_ptr().cast::<libc::cpu_set_t>())
        };
        if rc != 0 {
            return Err(format!(
                "cannot confine a thread to CPUs {}: {}",
                gpm_numa::format_list(&self.cpus),
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    /// One line for logs: what is pinned where.
    pub fn describe(&self) -> String {
        format!(
            "pinning {:?}: tokio threads round-robin over CPUs {}, driver on CPU {}; gpm workers \
             pinned one per CPU by Builder::placement",
            self.placement,
            gpm_numa::format_list(&self.cpus),
            self.cpus.last().copied().unwrap_or(0)
        )
    }
}

/// [`BenchPinning::from_env`], printing the error and exiting with status 2 on bad values
/// (benchmark harnesses have no way to return an error).
pub fn from_env_or_exit() -> Option<BenchPinning> {
    match BenchPinning::from_env() {
        Ok(pinning) => pinning,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}

/// Gives `builder` the bench's placement and pins its workers, when a pinning is set.
pub fn apply_to_gpm(builder: &mut gpm::Builder) {
    if let Some(pinning) = global() {
        builder
            .placement(pinning.placement.clone())
            .pin_workers(true);
    }
}

/// The process-wide pinning, read once.
pub fn global() -> Option<&'static BenchPinning> {
    static PINNING: std::sync::OnceLock<Option<BenchPinning>> = std::sync::OnceLock::new();
    PINNING.get_or_init(from_env_or_exit).as_ref()
}

/// Runs `build` on a helper thread confined to the pinning's CPUs (when one is set), so the
/// threads it starts (a runtime's workers) inherit the whole CPU set and not the driver's
/// single pinned CPU: Linux threads inherit their creator's affinity.
pub fn build_confined<T: Send>(build: impl FnOnce() -> T + Send) -> T {
    let Some(pinning) = global() else {
        return build();
    };
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                if let Err(e) = pinning.confine_current_thread() {
                    eprintln!("warning: {e}");
                }
                build()
            })
            .join()
            .expect("runtime build panicked")
    })
}

/// Pins the calling thread as the bench driver when a pinning is set (idempotent; exits with
/// status 2 if the kernel refuses).
pub fn pin_driver_from_env() {
    if let Some(pinning) = global() {
        if let Err(e) = pinning.pin_driver() {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpus_and_nodes() {
        assert_eq!(parse(None, None), Ok(None));
        assert_eq!(
            parse(Some("0,1"), None),
            Ok(Some(Placement::Cpus(vec![0, 1])))
        );
        assert_eq!(
            parse(Some("0-2"), None),
            Ok(Some(Placement::Cpus(vec![0, 1, 2])))
        );
        assert_eq!(parse(None, Some(" 0 ")), Ok(Some(Placement::Node(0))));
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let both = parse(Some("0"), Some("0")).unwrap_err();
        assert!(both.contains("not both"), "{both}");
        let junk = parse(Some("0,x"), None).unwrap_err();
        assert!(
            junk.contains("GPM_BENCH_CPUS") && junk.contains("not a CPU list"),
            "{junk}"
        );
        assert!(parse(Some("3-1"), None).unwrap_err().contains("reversed"));
        assert!(parse(Some(" "), None).unwrap_err().contains("names no CPU"));
        let node = parse(None, Some("-1")).unwrap_err();
        assert!(node.contains("GPM_BENCH_NODE"), "{node}");
    }

    #[test]
    fn resolves_on_this_machine() {
        let first = gpm_numa::allowed_cpus()[0];
        let pinning = BenchPinning::resolve(Placement::Cpus(vec![first])).unwrap();
        assert_eq!(pinning.cpus, vec![first]);
        let node = BenchPinning::resolve(Placement::Node(0)).unwrap();
        assert!(!node.cpus.is_empty());
        let missing = BenchPinning::resolve(Placement::Cpus(vec![100_000])).unwrap_err();
        assert!(missing.contains("100000"), "{missing}");
        assert!(BenchPinning::resolve(Placement::Node(999)).is_err());
    }

    #[test]
    fn pinned_threads_run_where_asked() {
        let first = gpm_numa::allowed_cpus()[0];
        let pinning = BenchPinning::resolve(Placement::Cpus(vec![first])).unwrap();
        let hook = pinning.thread_start_hook();
        let seen = std::thread::spawn(move || {
            hook();
            gpm_numa::current_thread_affinity().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(seen, vec![first]);
        let driver = std::thread::spawn(move || {
            pinning.pin_driver().unwrap();
            gpm_numa::current_thread_affinity().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(driver, vec![first]);
    }

    #[test]
    fn confined_threads_see_the_whole_list_and_pass_it_on() {
        let allowed = gpm_numa::allowed_cpus();
        let pinning = BenchPinning::resolve(Placement::Cpus(allowed.clone())).unwrap();
        let seen = std::thread::spawn(move || {
            gpm_numa::pin_current_thread(allowed[0]).unwrap();
            pinning.confine_current_thread().unwrap();
            std::thread::spawn(|| gpm_numa::current_thread_affinity().unwrap())
                .join()
                .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(seen, gpm_numa::allowed_cpus());
    }
}
