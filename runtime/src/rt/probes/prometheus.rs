//! Export of a [`Probes`] snapshot: JSON (`serde`) and Prometheus' text exposition format
//! (version 0.0.4). Each metric family is a row of a table (name, help, type, value), so a
//! new metric is one row.

use super::snapshot::{LatencyProbe, LittleProbe, Probes, ProcessorProbe};
use gpm_scheduler::probe::Event;
use gpm_scheduler::steal::Relation;
use std::fmt::{self, Write as _};

impl Probes {
    /// The snapshot as JSON (`serde_json`); non-finite numbers become `null`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("probes contain only serialisable values")
    }

    /// The snapshot in Prometheus' text exposition format (version 0.0.4).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        self.write_prometheus(&mut out)
            .expect("writing to a String cannot fail");
        out
    }

    fn write_prometheus(&self, out: &mut String) -> fmt::Result {
        self.write_gauges(out)?;
        self.write_per_processor(out)?;
        self.write_task_memory(out)?;
        summary(
            out,
            "gpm_task_sojourn_seconds",
            "Spawn-to-completion time of sampled tasks.",
            &self.sojourn,
        )?;
        summary(
            out,
            "gpm_queue_wait_seconds",
            "Enqueue-to-poll time of sampled tasks.",
            &self.queue_wait,
        )?;
        self.write_little(out)
    }

    fn write_gauges(&self, out: &mut String) -> fmt::Result {
        let gauges: [(&str, &str, f64); 7] = [
            (
                "gpm_injector_depth",
                "Tasks in the global queue.",
                self.injector_depth as f64,
            ),
            (
                "gpm_blocking_queue_depth",
                "Closures waiting for a blocking thread.",
                self.blocking_queue_depth as f64,
            ),
            ("gpm_parked_processors", "Parked Ps.", self.parked as f64),
            (
                "gpm_searching_processors",
                "Ps searching for work.",
                self.searching as f64,
            ),
            (
                "gpm_threads",
                "OS threads of the runtime.",
                self.threads as f64,
            ),
            (
                "gpm_tasks_alive",
                "Tasks spawned and not completed (L).",
                self.tasks_alive as f64,
            ),
            (
                "gpm_uptime_seconds",
                "Time since the runtime started.",
                self.uptime_s,
            ),
        ];
        for (name, help, value) in gauges {
            metric(out, name, help, "gauge", &[("", value)])?;
        }
        Ok(())
    }

    fn write_per_processor(&self, out: &mut String) -> fmt::Result {
        let gauges: [PerProcessor; 2] = [
            (
                "gpm_processor_queue_depth",
                "Tasks in a P's local queue.",
                |p| p.queue_depth as f64,
            ),
            (
                "gpm_processor_deferred",
                "Yielded tasks waiting on a P.",
                |p| p.deferred as f64,
            ),
        ];
        for (name, help, value) in gauges {
            let values: Vec<(String, f64)> = self
                .processors
                .iter()
                .map(|p| (processor_label(p, None), value(p)))
                .collect();
            metric(out, name, help, "gauge", &values)?;
        }
        self.write_events(out)
    }

    /// Every per-P event counter ([`Event::ALL`]), grouped into families; the steal
    /// families carry a `relation` label.
    fn write_events(&self, out: &mut String) -> fmt::Result {
        let mut written: Vec<&str> = Vec::new();
        for event in Event::ALL {
            let family = event.describe().family;
            if written.contains(&family) {
                continue;
            }
            written.push(family);
            let rows: Vec<Event> = Event::ALL
                .into_iter()
                .filter(|e| e.describe().family == family)
                .collect();
            let values: Vec<(String, f64)> = self
                .processors
                .iter()
                .flat_map(|p| {
                    rows.iter().map(move |&e| {
                        let label = processor_label(p, e.describe().relation);
                        (label, p.events[e] as f64)
                    })
                })
                .collect();
            let name = format!("gpm_processor_{family}_total");
            metric(out, &name, event.describe().help, "counter", &values)?;
        }
        Ok(())
    }

    fn write_task_memory(&self, out: &mut String) -> fmt::Result {
        let memory = &self.task_memory;
        let label = format!("allocator=\"{}\"", memory.allocator);
        metric(
            out,
            "gpm_task_memory_live_bytes",
            "Bytes of live task cells.",
            "gauge",
            &[(&label, memory.live_bytes as f64)],
        )?;
        metric(
            out,
            "gpm_task_memory_mapped_bytes",
            "Bytes mapped for the slab.",
            "gauge",
            &[(&label, memory.mapped_bytes as f64)],
        )
    }

    fn write_little(&self, out: &mut String) -> fmt::Result {
        let views = [
            ("view=\"tasks\"", self.little_tasks),
            ("view=\"queues\"", self.little_queues),
        ];
        let fields: [LittleField; 4] = [
            (
                "gpm_little_lambda",
                "Arrival rate over the window, per second.",
                |l| l.lambda,
            ),
            (
                "gpm_little_w_seconds",
                "Mean time in the system over the window.",
                |l| l.w_s,
            ),
            (
                "gpm_little_l_measured",
                "Items in the system, measured.",
                |l| l.l_measured,
            ),
            ("gpm_little_l_predicted", "lambda * W.", |l| l.l_predicted),
        ];
        for (name, help, field) in fields {
            let values: Vec<(&str, f64)> = views
                .iter()
                .filter_map(|(label, law)| law.as_ref().map(|law| (*label, field(law))))
                .collect();
            if !values.is_empty() {
                metric(out, name, help, "gauge", &values)?;
            }
        }
        Ok(())
    }
}

/// A per-P gauge: name, help, value.
type PerProcessor = (&'static str, &'static str, fn(&ProcessorProbe) -> f64);
/// A Little's-law metric: name, help, value.
type LittleField = (&'static str, &'static str, fn(&LittleProbe) -> f64);

/// `processor="i"`, with `relation="..."` when given.
fn processor_label(p: &ProcessorProbe, relation: Option<Relation>) -> String {
    let relation = relation.map(|r| match r {
        Relation::SameL3 => "same_l3",
        Relation::SameNode => "same_node",
        Relation::OtherNode => "other_node",
    });
    match relation {
        Some(r) => format!("processor=\"{}\",relation=\"{r}\"", p.index),
        None => format!("processor=\"{}\"", p.index),
    }
}

fn metric<L: AsRef<str>>(
    out: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    values: &[(L, f64)],
) -> fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")?;
    for (labels, value) in values {
        let labels = labels.as_ref();
        let value = prometheus_value(*value);
        if labels.is_empty() {
            writeln!(out, "{name} {value}")?;
        } else {
            writeln!(out, "{name}{{{labels}}} {value}")?;
        }
    }
    Ok(())
}

fn summary(out: &mut String, name: &str, help: &str, latency: &LatencyProbe) -> fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} summary")?;
    for (q, ns) in [
        ("0.5", latency.p50_ns),
        ("0.99", latency.p99_ns),
        ("0.999", latency.p999_ns),
    ] {
        writeln!(out, "{name}{{quantile=\"{q}\"}} {}", ns as f64 / 1e9)?;
    }
    let sum = latency.mean_ns * latency.count as f64 / 1e9;
    writeln!(out, "{name}_sum {}", prometheus_value(sum))?;
    writeln!(out, "{name}_count {}", latency.count)
}

fn prometheus_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        value.to_string()
    }
}
