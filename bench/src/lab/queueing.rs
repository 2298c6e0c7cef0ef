//! Queueing-theory predictions the experiments are checked against.
//!
//! The lab's load is Poisson arrivals at rate `lambda` served by `c` workers, service time
//! `S` (mean), first come first served: an M/G/c queue. Two service distributions:
//!
//! * **exponential** (`--service-dist exp`): M/M/c, solved exactly by Erlang's C formula.
//!   `P_wait = C(c, a)` with offered load `a = lambda S`, `Wq = C / (c/S - lambda)`,
//!   `W = Wq + S`, `L = lambda W`; the sojourn tail is
//!   `P(T > t) = e^(-t/S) + C (1/S) (e^(-t/S) - e^(-theta t)) / (theta - 1/S)` with
//!   `theta = c/S - lambda` (`Wq` is 0 with probability `1 - C`, else exponential at rate
//!   `theta`, plus an independent exponential service).
//! * **constant** (`--service-dist const`, a busy-spin of exactly `S`): M/D/c has no closed
//!   form; we use the Allen-Cunneen approximation `Wq ~ Wq(M/M/c) * (ca^2 + cs^2) / 2` with
//!   `ca^2 = 1` (Poisson) and `cs^2 = 0`, i.e. half the M/M/c wait (exact for c = 1 by
//!   Pollaczek-Khinchine), and a tail that keeps the M/M/c shape: `Wq` is 0 with
//!   probability `C`, otherwise exponential with mean `Wq / C`.
//!
//! Every function returns NaN when `rho = lambda S / c >= 1` (no steady state) or on
//! invalid input (`c == 0`, non-positive `S`, negative `lambda`).

/// Service-time distribution of the lab's synthetic tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceDist {
    /// Every task burns exactly `S`.
    Const,
    /// Exponential with mean `S`.
    Exp,
}

impl std::str::FromStr for ServiceDist {
    type Err = String;
    fn from_str(text: &str) -> Result<ServiceDist, String> {
        match text {
            "const" => Ok(ServiceDist::Const),
            "exp" => Ok(ServiceDist::Exp),
            _ => Err(format!(
                "unknown service distribution {text:?}: use const or exp"
            )),
        }
    }
}

/// The predictions for one load point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Utilisation `lambda S / c`.
    pub rho: f64,
    /// Probability that an arrival waits (Erlang C).
    pub p_wait: f64,
    /// Mean sojourn time, seconds.
    pub w: f64,
    /// Tasks in the system, `lambda W`.
    pub l: f64,
    /// 99th percentile of the sojourn time, seconds.
    pub p99: f64,
}

/// Erlang's C formula: the probability that an arrival waits in M/M/c with offered load `a`.
pub fn erlang_c(c: usize, a: f64) -> f64 {
    if c == 0 || a.is_nan() || a < 0.0 || a >= c as f64 {
        return f64::NAN;
    }
    // Erlang B by its stable recurrence, then C = B / (1 - rho (1 - B)).
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (k as f64 + a * b);
    }
    let rho = a / c as f64;
    b / (1.0 - rho * (1.0 - b))
}

/// Predictions for `c` workers, arrival rate `lambda` (1/s), mean service `s` (seconds).
pub fn predict(c: usize, lambda: f64, s: f64, dist: ServiceDist) -> Prediction {
    let nan = Prediction {
        rho: if c == 0 || s <= 0.0 {
            f64::NAN
        } else {
            lambda * s / c as f64
        },
        p_wait: f64::NAN,
        w: f64::NAN,
        l: f64::NAN,
        p99: f64::NAN,
    };
    let p_wait = erlang_c(c, lambda * s);
    if !super::positive(s) || p_wait.is_nan() {
        return nan;
    }
    let theta = c as f64 / s - lambda;
    let wq_mmc = p_wait / theta;
    let (wq, p99) = match dist {
        ServiceDist::Exp => (wq_mmc, quantile(|t| mmc_tail(p_wait, s, theta, t), 0.01, s)),
        ServiceDist::Const => {
            let wq = wq_mmc / 2.0;
            // Wq > t with probability C e^(-t C / Wq); the sojourn is Wq + S.
            let tail = |t: f64| {
                if t <= 0.0 {
                    1.0
                } else {
                    p_wait * (-t * p_wait / wq).exp()
                }
            };
            (wq, s + quantile(tail, 0.01, wq.max(s)))
        }
    };
    let w = wq + s;
    Prediction {
        rho: nan.rho,
        p_wait,
        w,
        l: lambda * w,
        p99,
    }
}

/// `P(T > t)` for the M/M/c sojourn time (see the module docs).
fn mmc_tail(p_wait: f64, s: f64, theta: f64, t: f64) -> f64 {
    let mu = 1.0 / s;
    let service = (-mu * t).exp();
    if (theta - mu).abs() < 1e-9 * mu {
        // The limit theta -> mu: the sum of two equal exponentials (Erlang-2).
        return service + p_wait * mu * t * service;
    }
    service + p_wait * mu * (service - (-theta * t).exp()) / (theta - mu)
}

/// The smallest `t >= 0` with `tail(t) <= p`, by doubling then bisection; `scale` is a first
/// guess of the size of `t`.
fn quantile(tail: impl Fn(f64) -> f64, p: f64, scale: f64) -> f64 {
    if tail(0.0) <= p {
        return 0.0;
    }
    let mut hi = scale.max(1e-12);
    while tail(hi) > p {
        hi *= 2.0;
        if !hi.is_finite() {
            return f64::NAN;
        }
    }
    let mut lo = 0.0;
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if tail(mid) > p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    #[test]
    fn erlang_c_matches_known_values() {
        // M/M/1: P_wait = rho.
        assert!(close(erlang_c(1, 0.7), 0.7, 1e-12));
        // M/M/2 at a = 1: C = a^2 / (2 + a^2 ... ) = 1/3.
        assert!(close(erlang_c(2, 1.0), 1.0 / 3.0, 1e-12));
        assert!(erlang_c(2, 2.0).is_nan());
        assert!(erlang_c(0, 0.5).is_nan());
    }

    #[test]
    fn mm1_closed_forms() {
        // M/M/1: W = S / (1 - rho); the sojourn is exponential at rate mu - lambda, so
        // P99 = ln(100) / (mu - lambda).
        let (s, lambda) = (0.001, 600.0);
        let p = predict(1, lambda, s, ServiceDist::Exp);
        assert!(close(p.w, s / 0.4, 1e-9), "{p:?}");
        assert!(close(p.l, 0.6 / 0.4, 1e-9));
        assert!(close(p.p99, 100f64.ln() / (1000.0 - 600.0), 1e-6), "{p:?}");
    }

    #[test]
    fn md1_is_pollaczek_khinchine() {
        // M/D/1: Wq = rho S / (2 (1 - rho)).
        let (s, lambda) = (0.001, 500.0);
        let p = predict(1, lambda, s, ServiceDist::Const);
        assert!(close(p.w, s + 0.5 * s / (2.0 * 0.5), 1e-9), "{p:?}");
        assert!(p.p99 > s);
    }

    #[test]
    fn more_load_more_waiting_and_saturation_is_nan() {
        let low = predict(2, 500.0, 0.001, ServiceDist::Exp);
        let high = predict(2, 1800.0, 0.001, ServiceDist::Exp);
        assert!(high.w > low.w && high.p99 > low.p99 && high.l > low.l);
        let over = predict(2, 2000.0, 0.001, ServiceDist::Exp);
        assert!(over.w.is_nan() && close(over.rho, 1.0, 1e-12));
    }

    #[test]
    fn service_dist_parses() {
        assert_eq!("exp".parse::<ServiceDist>(), Ok(ServiceDist::Exp));
        assert!("gamma"
            .parse::<ServiceDist>()
            .unwrap_err()
            .contains("const or exp"));
    }
}
