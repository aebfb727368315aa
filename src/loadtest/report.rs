//! What a load run measured: per-worker [`Stats`] (an HDR histogram of latencies, answers by status,
//! errors by gRPC code, a per-second timeline), merged at the end into a [`RunSummary`]; the JSON of
//! docs/api.md §6 ([`Report`]), the text report, and the self-contained HTML report.
//!
//! Holds counts and times only: never a request, an identity or a status message.

pub use crate::transport::errors::code_name;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latencies are recorded in microseconds, from 1 µs to an hour.
const HIGHEST_US: u64 = 3_600_000_000;

fn histogram(significant_figures: u8) -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts (1 ≤ low, high ≥ 2·low, 0..=5 figures).
    Histogram::new_with_bounds(1, HIGHEST_US, significant_figures).unwrap_or_else(|_| unreachable!())
}

/// One second of the measured window (by completion time).
#[derive(Clone)]
pub struct Second {
    pub ok: u64,
    pub errors: u64,
    pub latency: Histogram<u64>,
}

/// What one worker (or one shard of an open-loop run) measured.
#[derive(Clone)]
pub struct Stats {
    /// Latency of calls that were answered OK.
    pub latency: Histogram<u64>,
    /// OK answers by what they said (`VERIFIED`, `ECHOED`, …).
    pub statuses: BTreeMap<&'static str, u64>,
    /// Failed calls by gRPC code name.
    pub errors: BTreeMap<&'static str, u64>,
    /// Calls by method.
    pub calls: BTreeMap<&'static str, u64>,
    pub seconds: Vec<Second>,
    /// When the last call finished, from the start of the measured window.
    pub last_done: Duration,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            latency: histogram(3),
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            calls: BTreeMap::new(),
            seconds: Vec::new(),
            last_done: Duration::ZERO,
        }
    }
}

/// How one call ended: an answer (what it said) or a gRPC code.
pub type CallResult = Result<&'static str, tonic::Code>;

impl Stats {
    /// Records one call of `method` that took `latency` and finished `done` after the window opened.
    pub fn record(&mut self, method: &'static str, result: CallResult, latency: Duration, done: Duration) {
        *self.calls.entry(method).or_default() += 1;
        let second = done.as_secs() as usize;
        if self.seconds.len() <= second {
            self.seconds.resize_with(second + 1, || Second {
                ok: 0,
                errors: 0,
                latency: histogram(2),
            });
        }
        let slot = &mut self.seconds[second];
        match result {
            Ok(status) => {
                let us = (latency.as_micros() as u64).clamp(1, HIGHEST_US);
                self.latency.saturating_record(us);
                slot.latency.saturating_record(us);
                slot.ok += 1;
                *self.statuses.entry(status).or_default() += 1;
            }
            Err(code) => {
                slot.errors += 1;
                *self.errors.entry(code_name(code)).or_default() += 1;
            }
        }
        self.last_done = self.last_done.max(done);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        // Both histograms have the same bounds (made by `histogram`), so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        for (map, theirs) in [
            (&mut self.statuses, &other.statuses),
            (&mut self.errors, &other.errors),
            (&mut self.calls, &other.calls),
        ] {
            for (k, v) in theirs {
                *map.entry(k).or_default() += v;
            }
        }
        if self.seconds.len() < other.seconds.len() {
            self.seconds.resize_with(other.seconds.len(), || Second {
                ok: 0,
                errors: 0,
                latency: histogram(2),
            });
        }
        for (mine, theirs) in self.seconds.iter_mut().zip(&other.seconds) {
            mine.ok += theirs.ok;
            mine.errors += theirs.errors;
            let _ = mine.latency.add(&theirs.latency);
        }
        self.last_done = self.last_done.max(other.last_done);
    }

    pub fn ok(&self) -> u64 {
        self.statuses.values().sum()
    }

    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Latency percentiles in milliseconds (docs/api.md §6).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// One point of the latency distribution: the `percentile` (0–100) and its latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub percentile: f64,
    pub ms: f64,
}

/// One second of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondSummary {
    pub second: u64,
    pub ok: u64,
    pub errors: u64,
    pub p99_ms: f64,
}

/// How well an open-loop run kept its schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSummary {
    /// Requests sent more than 10 ms after their intended time.
    pub late_requests: u64,
    pub max_lag_ms: f64,
}

/// The settings a run was made with (the same for the baseline and the target).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// `open` (`--rate`) or `closed` (`--concurrency`).
    pub mode: String,
    pub rate: Option<f64>,
    pub concurrency: Option<usize>,
    pub connections: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub timeout_ms: u64,
    /// Encoded size of one Verify request (and of one echo request's payload).
    pub message_bytes: usize,
    /// Closed loop: whether a shed caller waited the delay its `RetryInfo` suggested before resending.
    #[serde(default)]
    pub honours_retry_info: bool,
}

/// One phase's figures: the target's or the baseline's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The gRPC service driven.
    pub service: String,
    #[serde(flatten)]
    pub settings: Settings,
    /// Calls made in the measured window (answered or failed).
    pub requests: u64,
    pub ok: u64,
    /// OK answers per second of the measured window.
    pub throughput_rps: f64,
    /// Of OK answers, from the intended send time (open loop) or the send (closed loop).
    pub latency_ms: Latency,
    pub statuses: BTreeMap<String, u64>,
    /// gRPC status name → count.
    pub errors: BTreeMap<String, u64>,
    pub calls: BTreeMap<String, u64>,
    pub schedule: Option<ScheduleSummary>,
    /// How many calls found the prepared-payload pool empty (above zero: the tool may have been the limit).
    pub pool_waits: u64,
    pub distribution: Vec<Point>,
    pub timeline: Vec<SecondSummary>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl RunSummary {
    pub fn new(
        service: &str,
        settings: Settings,
        stats: &Stats,
        schedule: Option<ScheduleSummary>,
        pool_waits: u64,
    ) -> Self {
        let h = &stats.latency;
        let window = stats.last_done.max(Duration::from_secs_f64(settings.duration_s));
        let ok = stats.ok();
        let throughput_rps = if window.is_zero() {
            0.0
        } else {
            ok as f64 / window.as_secs_f64()
        };
        let latency_ms = if h.is_empty() {
            Latency::default()
        } else {
            Latency {
                p50: ms(h.value_at_quantile(0.50)),
                p90: ms(h.value_at_quantile(0.90)),
                p99: ms(h.value_at_quantile(0.99)),
                p999: ms(h.value_at_quantile(0.999)),
                max: ms(h.max()),
                mean: h.mean() / 1000.0,
            }
        };
        let distribution = if h.is_empty() {
            Vec::new()
        } else {
            h.iter_quantiles(2)
                .map(|v| Point {
                    percentile: v.quantile_iterated_to() * 100.0,
                    ms: ms(h.highest_equivalent(v.value_iterated_to())),
                })
                .collect()
        };
        let timeline = stats
            .seconds
            .iter()
            .enumerate()
            .map(|(i, s)| SecondSummary {
                second: i as u64,
                ok: s.ok,
                errors: s.errors,
                p99_ms: if s.latency.is_empty() {
                    0.0
                } else {
                    ms(s.latency.value_at_quantile(0.99))
                },
            })
            .collect();
        let owned = |m: &BTreeMap<&'static str, u64>| m.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        Self {
            service: service.to_owned(),
            settings,
            requests: ok + stats.failed(),
            ok,
            throughput_rps,
            latency_ms,
            statuses: owned(&stats.statuses),
            errors: owned(&stats.errors),
            calls: owned(&stats.calls),
            schedule,
            pool_waits,
            distribution,
            timeline,
        }
    }
}

/// The whole run: the target's figures at the top level (docs/api.md §6), the baseline's beside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    #[serde(flatten)]
    pub target: RunSummary,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub baseline: Option<RunSummary>,
    /// Target throughput ÷ baseline throughput.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub throughput_ratio: Option<f64>,
}

impl Report {
    pub fn new(target: RunSummary, baseline: Option<RunSummary>) -> Self {
        let throughput_ratio = baseline
            .as_ref()
            .filter(|b| b.throughput_rps > 0.0)
            .map(|b| target.throughput_rps / b.throughput_rps);
        Self {
            target,
            baseline,
            throughput_ratio,
        }
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(b) = &self.baseline {
            out.push_str(&summary_text("baseline (bare echo)", b));
        }
        out.push_str(&summary_text("target", &self.target));
        if let Some(r) = self.throughput_ratio {
            let _ = writeln!(out, "throughput ratio (target ÷ baseline): {r:.3}");
        }
        out
    }
}

fn summary_text(title: &str, s: &RunSummary) -> String {
    let mut out = String::new();
    let l = &s.latency_ms;
    let _ = writeln!(
        out,
        "{title}: {} — {} requests, {} ok, {:.1} ok/s",
        s.service, s.requests, s.ok, s.throughput_rps
    );
    let _ = writeln!(
        out,
        "  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        l.p50, l.p90, l.p99, l.p999, l.max
    );
    let join = |m: &BTreeMap<String, u64>| {
        if m.is_empty() {
            "none".to_owned()
        } else {
            m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        }
    };
    let _ = writeln!(out, "  answers: {}", join(&s.statuses));
    let _ = writeln!(out, "  errors:  {}", join(&s.errors));
    if let Some(sched) = s.schedule.as_ref().filter(|s| s.late_requests > 0) {
        let _ = writeln!(
            out,
            "  WARNING: could not keep the schedule: {} requests sent over 10 ms late (worst {:.1} ms); \
             latency is still counted from the intended time",
            sched.late_requests, sched.max_lag_ms
        );
    }
    if s.pool_waits > 0 {
        let _ = writeln!(
            out,
            "  WARNING: {} calls waited for the payload pool: the tool, not the target, may have been the limit",
            s.pool_waits
        );
    }
    out
}

/// One line of a chart: label, colour, points.
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// A polyline chart as inline SVG.
fn svg_chart(title: &str, x_label: &str, y_label: &str, series: &[Series<'_>], log_x: bool) -> String {
    let (w, h, pad) = (720.0, 300.0, 50.0);
    let fx = |x: f64| {
        if log_x {
            (1.0 / (1.0 - x.min(0.99999) / 100.0)).log10()
        } else {
            x
        }
    };
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.2.iter().map(|&(x, y)| (fx(x), y)))
        .collect();
    let max_x = all.iter().map(|p| p.0).fold(0.0f64, f64::max).max(1e-9);
    let max_y = all.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-9);
    let px = |x: f64| pad + fx(x) / max_x * (w - 2.0 * pad);
    let py = |y: f64| h - pad - y / max_y * (h - 2.0 * pad);
    let mut out = format!(
        "<h2>{title}</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         style=\"background:#fff;border:1px solid #ccc\">"
    );
    let _ = write!(
        out,
        "<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#000\"/>\
         <line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{}\" stroke=\"#000\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x_label}</text>\
         <text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">{y_label}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max_y:.2}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>",
        h - pad,
        w - pad,
        h - pad,
        h - pad,
        w / 2.0,
        h - 10.0,
        h / 2.0,
        h / 2.0,
        pad - 4.0,
        pad + 4.0,
        pad - 4.0,
        h - pad
    );
    if log_x {
        for p in [50.0, 90.0, 99.0, 99.9, 99.99] {
            if fx(p) <= max_x {
                let _ = write!(
                    out,
                    "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">p{p}</text>",
                    px(p),
                    h - pad + 14.0
                );
            }
        }
    }
    for (i, (label, colour, points)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{colour}\">{label}</text>",
            path.join(" "),
            w - pad - 160.0,
            pad + 16.0 * i as f64
        );
    }
    out.push_str("</svg>");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A self-contained HTML report: the text report, the latency distribution and throughput / p99 over
/// time, as inline SVG (no scripts, no network assets).
pub fn html(report: &Report) -> String {
    let mut phases: Vec<(&str, &str, &RunSummary)> = Vec::new();
    if let Some(b) = &report.baseline {
        phases.push(("baseline", "#888", b));
    }
    phases.push(("target", "#c0392b", &report.target));
    let distribution: Vec<_> = phases
        .iter()
        .map(|(l, c, s)| (*l, *c, s.distribution.iter().map(|p| (p.percentile, p.ms)).collect()))
        .collect();
    let throughput: Vec<_> = phases
        .iter()
        .map(|(l, c, s)| {
            (
                *l,
                *c,
                s.timeline.iter().map(|t| (t.second as f64, t.ok as f64)).collect(),
            )
        })
        .collect();
    let p99: Vec<_> = phases
        .iter()
        .map(|(l, c, s)| (*l, *c, s.timeline.iter().map(|t| (t.second as f64, t.p99_ms)).collect()))
        .collect();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>idgate loadtest</title></head>\
         <body style=\"font-family:sans-serif\"><h1>idgate loadtest</h1><pre>{}</pre>{}{}{}</body></html>\n",
        escape(&report.text()),
        svg_chart("Latency distribution", "percentile", "ms", &distribution, true),
        svg_chart("Throughput over time", "second", "ok answers / s", &throughput, false),
        svg_chart("p99 latency over time", "second", "ms", &p99, false),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn settings() -> Settings {
        Settings {
            mode: "closed".into(),
            rate: None,
            concurrency: Some(2),
            connections: 1,
            duration_s: 2.0,
            warmup_s: 0.0,
            timeout_ms: 1000,
            message_bytes: 100,
            honours_retry_info: true,
        }
    }

    #[test]
    fn merged_stats_equal_stats_recorded_in_one_place() {
        let ms = Duration::from_millis;
        let mut one = Stats::default();
        let mut a = Stats::default();
        let mut b = Stats::default();
        let calls: [(CallResult, u64, u64); 5] = [
            (Ok("VERIFIED"), 5, 100),
            (Ok("VERIFIED"), 7, 1500),
            (Ok("PENDING_REVIEW"), 50, 1600),
            (Err(tonic::Code::ResourceExhausted), 1, 200),
            (Err(tonic::Code::DeadlineExceeded), 1000, 2100),
        ];
        for (i, (r, lat, done)) in calls.iter().enumerate() {
            one.record("Verify", *r, ms(*lat), ms(*done));
            let half = if i % 2 == 0 { &mut a } else { &mut b };
            half.record("Verify", *r, ms(*lat), ms(*done));
        }
        a.merge(&b);
        assert_eq!(a.latency, one.latency);
        assert_eq!(a.statuses, one.statuses);
        assert_eq!(a.errors, one.errors);
        assert_eq!(a.seconds.len(), 3);
        assert_eq!(
            a.seconds.iter().map(|s| (s.ok, s.errors)).collect::<Vec<_>>(),
            [(1, 1), (2, 0), (0, 1)]
        );
        assert_eq!(a.last_done, ms(2100));
        assert_eq!(a.latency.len(), 3);
        assert_eq!(a.latency.max(), one.latency.max());
    }

    #[test]
    fn json_has_the_contract_fields() {
        let mut stats = Stats::default();
        for i in 0..100u64 {
            stats.record(
                "Verify",
                Ok("VERIFIED"),
                Duration::from_millis(i + 1),
                Duration::from_millis(i * 10),
            );
        }
        stats.record(
            "Verify",
            Err(tonic::Code::Unavailable),
            Duration::from_millis(1),
            Duration::ZERO,
        );
        let target = RunSummary::new("idgate.v1.VerificationService", settings(), &stats, None, 0);
        let mut half = Stats::default();
        half.record("Echo", Ok("ECHOED"), Duration::from_millis(1), Duration::ZERO);
        let baseline = RunSummary::new("idgate.loadtest.v1.EchoService", settings(), &half, None, 0);
        let report = Report::new(target, Some(baseline));
        let v: serde_json::Value = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
        assert_eq!(v["requests"], 101);
        assert_eq!(v["throughput_rps"], 50.0); // 100 ok over the 2 s window
        for k in ["p50", "p90", "p99", "p999", "max"] {
            assert!(v["latency_ms"][k].is_f64(), "latency_ms.{k}");
        }
        assert!((v["latency_ms"]["p50"].as_f64().unwrap() - 50.0).abs() < 0.1);
        assert!((v["latency_ms"]["max"].as_f64().unwrap() - 100.0).abs() < 0.1); // 3 significant figures
        assert_eq!(v["errors"]["UNAVAILABLE"], 1);
        assert_eq!(v["statuses"]["VERIFIED"], 100);
        assert_eq!(v["baseline"]["requests"], 1);
        assert_eq!(v["baseline"]["throughput_rps"], 0.5);
        assert_eq!(v["throughput_ratio"], 100.0);
        assert!(v["baseline"]["errors"].is_object());
        let back: Report = serde_json::from_value(v).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn without_a_baseline_there_is_no_ratio_and_html_is_self_contained() {
        let report = Report::new(RunSummary::new("s", settings(), &Stats::default(), None, 0), None);
        let v = serde_json::to_value(&report).unwrap();
        assert!(v.get("baseline").is_none() && v.get("throughput_ratio").is_none());
        let page = html(&report);
        assert!(page.contains("<svg") && page.contains("Latency distribution"));
        assert!(!page.contains("src=") && !page.contains("href="), "no external assets");
    }
}
