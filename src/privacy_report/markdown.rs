//! The Markdown rendering of a [`DataMap`] for people: every figure is the map's own, with its
//! setting named, so the document and the JSON never disagree. It must never add a figure or a
//! recipient the map does not hold.

use super::{Category, DataMap, RedisNode, StoreMap};

/// `259200 s (3 d)`: seconds, and the whole unit they make if any.
pub fn duration(seconds: u64) -> String {
    let unit = [(86_400, "d"), (3_600, "h"), (60, "min")]
        .into_iter()
        .find(|(size, _)| seconds >= *size && seconds.is_multiple_of(*size));
    match unit {
        Some((size, name)) => format!("{seconds} s ({} {name})", seconds / size),
        None => format!("{seconds} s"),
    }
}

fn list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let items: Vec<String> = items.into_iter().map(|s| s.as_ref().to_owned()).collect();
    if items.is_empty() {
        "—".to_owned()
    } else {
        items.join(", ")
    }
}

fn labels(categories: &[Category]) -> String {
    list(categories.iter().map(|c| c.label()))
}

impl DataMap {
    /// The map as a Markdown document for the privacy office.
    pub fn to_markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut md = String::new();
        // Writing to a String cannot fail.
        let mut line = |text: String| {
            let _ = writeln!(md, "{text}");
        };
        line("# idgate data map".into());
        line(String::new());
        line(format!(
            "What this configuration ({} mode) does with personal data, derived from the settings the \
             gateway enforces. Callers only ever get back a verification id, a status and the verified flag.",
            self.mode
        ));
        line("\n## Personal data and who receives it\n".into());
        line("| data | required for | may be sent to (providers, purposes) | stored | reviewers |".into());
        line("|---|---|---|---|---|".into());
        for c in &self.categories {
            let mut required: Vec<&str> = c.required_for.clone();
            if c.required_for_anchor_review {
                required.push("anchor review");
            }
            let required = list(required);
            let providers = list(
                c.providers
                    .iter()
                    .map(|p| format!("{} ({})", p.provider, p.purposes.join(", "))),
            );
            let stored = if c.stored_while_pending_review && c.category == Category::FaceImage {
                "sealed apart (own data key), only while a decision needs it"
            } else if c.stored_while_pending_review {
                "sealed, only while pending review"
            } else {
                "never"
            };
            let reviewers = if c.reviewers {
                "re-sealed to the reviewer's key"
            } else {
                "never"
            };
            line(format!(
                "| {} | {required} | {providers} | {stored} | {reviewers} |",
                c.category.label()
            ));
        }
        line("\n## Providers, in failover order\n".into());
        line("| # | provider | kind | endpoint host | short_video | radio | anchor |".into());
        line("|---|---|---|---|---|---|---|".into());
        for p in &self.providers {
            let calls: Vec<String> = p
                .calls
                .iter()
                .map(|c| match (c.action, c.skipped_because) {
                    (Some(action), _) => format!("`{action}`: {}", labels(&c.categories)),
                    (None, why) => format!("nothing ({})", why.unwrap_or("not used")),
                })
                .collect();
            let host = if p.built_in {
                format!("{} (built-in simulator, loopback)", p.host)
            } else {
                p.host.clone()
            };
            line(format!(
                "| {} | {} | {} | {host} | {} |",
                p.order,
                p.name,
                p.kind,
                calls.join(" | ")
            ));
        }
        line(String::new());
        line(
            "A provider further down the list receives data only when those before it failed or were passed \
             over. Phone numbers and ID card images are never sent to a provider."
                .into(),
        );
        line("\n## Store\n".into());
        let nodes = |nodes: &[RedisNode]| {
            list(
                nodes
                    .iter()
                    .map(|n| format!("{}{}", n.host, if n.tls { " (TLS)" } else { "" })),
            )
        };
        line(match &self.store {
            StoreMap::Embedded => "Embedded (in-process): nothing survives a restart.".to_owned(),
            StoreMap::Redis { nodes: n } => format!("Redis (standalone): {}.", nodes(n)),
            StoreMap::RedisCluster { nodes: n } => format!("Redis Cluster: {}.", nodes(n)),
        });
        line("\n## Manual review\n".into());
        line(format!(
            "The reviewer holding a case (lease {}) receives {}, sealed with HPKE to the reviewer's \
             registered X25519 key (`info` `{}`, bound to the case id and the reviewer). Approvals \
             required: {}. Every claim, view and decision is audited.",
            duration(self.review.lease_seconds),
            labels(&self.review.receives),
            self.review.sealed_with_info,
            self.review.approvals_required
        ));
        let b = &self.biometrics;
        line("\n## Faces\n".into());
        line(format!(
            "- Separate consent: face recognition ({}) needs the applicant's biometric consent, recorded apart \
             from the general consent; without it the request is refused `{}` before anything is stored or sent.",
            list(&b.consent_required_for),
            b.missing_consent_refusal
        ));
        let document_calls: Vec<String> = self
            .providers
            .iter()
            .flat_map(|p| {
                p.document_review_calls.iter().map(move |c| match c.action {
                    Some(action) => format!("{} `{action}`: {}", p.name, labels(&c.categories)),
                    None => format!("{}: nothing", p.name),
                })
            })
            .collect();
        line(format!(
            "- Alternative without a face ({}): with `VerifyRequest.document_review` {} goes to any provider \
             (they receive: {}); the case goes to manual review (reason `{}`), where the reviewer decides from \
             {}.",
            list(&b.document_review_for),
            if b.document_review_sends_face {
                "a face still"
            } else {
                "no face"
            },
            list(document_calls),
            b.document_review_reason,
            labels(&b.document_review_material)
        ));
        line(format!(
            "- Not compared, not kept ({}): a face sealed with such a request anyway, like one sealed on the \
             document-review path, is dropped unread: never checked, sent, fingerprinted, stored or shown to a \
             reviewer.",
            list(&b.face_dropped_for)
        ));
        line(format!(
            "- Kept apart: in a pending case the face is sealed under a data key of its own (envelope field \
             `{}`), in stored values of its own, apart from the identity material (field `{}`); it is destroyed \
             as soon as no decision needs it (see below).",
            b.face_sealed_as, b.identity_sealed_as
        ));
        line(format!(
            "- Withdrawal: `{}` withdraws all consent (the pending material is erased) or only the biometric \
             part (the faces of pending cases are destroyed and the cases go on to document review); faces \
             already sent to a provider are not recalled.",
            b.withdrawal_rpc
        ));
        line("\n## Telemetry\n".into());
        line(match &self.telemetry.otlp_host {
            Some(host) => format!("Traces and metrics (ids, statuses, timings; no personal data) go to {host}."),
            None => "No OTLP export; logs carry no personal data.".to_owned(),
        });
        let p = &self.protection;
        let s = &p.client_sealing;
        let rotation = &p.key_rotation;
        line("\n## Protection\n".into());
        line(format!("- Transport: {}.", p.transport));
        line(format!(
            "- Client sealing: HPKE (RFC 9180) mode Base, {} (0x{:04x}) / {} (0x{:04x}) / {} (0x{:04x}); `info` {}.",
            s.kem,
            s.kem_id,
            s.kdf,
            s.kdf_id,
            s.aead,
            s.aead_id,
            list(p.client_sealing_info.iter().map(|i| format!("`{i}`")))
        ));
        line(format!(
            "- At rest: a fresh {}-bit data key per case, {} with {}-bit random nonces (format version {}), \
             wrapped by a versioned key-encryption key; destroying the wrapped key destroys the data.",
            p.at_rest.data_key_bits, p.at_rest.aead, p.at_rest.nonce_bits, p.at_rest.format_version
        ));
        line(format!(
            "- Key rotation: keys from {}; the previous sealing key is accepted for {} after a rotation; \
             data keys are re-wrapped to the newest KEK every {}; {}.",
            list(&rotation.sources),
            duration(rotation.sealing_grace_seconds.unsigned_abs()),
            duration(rotation.rewrap_interval_seconds),
            match rotation.kek_min_version {
                0 => "no KEK is retired".to_owned(),
                v => format!("KEKs below version {v} are retired"),
            }
        ));
        line(format!(
            "- Key epochs: a key-encryption key wraps new data keys for {}, and is destroyed {} after its epoch \
             ends (the longest a case it wrapped can be pending, plus grace); copies of the store (backups, \
             replicas) open nothing after that. The key store's own backups must follow the same schedule.",
            duration(rotation.kek_epoch_seconds.unsigned_abs()),
            duration(rotation.kek_destroyed_after_epoch_seconds.unsigned_abs()),
        ));
        line(format!("- Blind index: {}.", p.blind_index));
        line("\n## How long it lives\n".into());
        line("| data | kept at most | or until | setting |".into());
        line("|---|---|---|---|".into());
        for l in &self.lifetimes {
            let kept = l.seconds.map_or("not kept (limit off)".to_owned(), duration);
            let until = if l.ends_earlier.is_empty() {
                "—"
            } else {
                l.ends_earlier
            };
            line(format!("| {} | {kept} | {until} | `{}` |", l.what, l.source));
        }
        line(String::new());
        line(format!(
            "Retention runs every {} (`retention.sweep_interval_seconds`){}.",
            duration(self.retention_sweep_seconds),
            match self.store {
                StoreMap::Embedded => "",
                _ => "; Redis TTLs remove the data even when no gateway runs",
            }
        ));
        md
    }
}
