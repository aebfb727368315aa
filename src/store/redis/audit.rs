//! [`AuditLog`] on Redis: one stream, `P:audit`; an event's id is its stream id, and the stream is
//! trimmed by age (`MINID ~`) on every append. Entry fields: `at` (unix seconds), `actor`, `action`,
//! `detail`, and `case` when the event names one.
//!
//! Only a stream id is a cursor: anything else is refused as unknown, as by the embedded store.

use std::collections::HashMap;

use super::{RedisStore, corrupt};
use crate::store::{AuditAction, AuditEvent, AuditLog, StoreError};

#[async_trait::async_trait]
impl AuditLog for RedisStore {
    async fn append_audit(&self, event: AuditEvent, retention_seconds: u64) -> Result<(), StoreError> {
        let retention = i64::try_from(retention_seconds).unwrap_or(i64::MAX);
        let min_ms = event.at_unix.saturating_sub(retention).saturating_mul(1000).max(0);
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.inner.keys.audit())
            .arg("MINID")
            .arg("~")
            .arg(min_ms)
            .arg("*")
            .arg("at")
            .arg(event.at_unix)
            .arg("actor")
            .arg(&event.actor)
            .arg("action")
            .arg(event.action.as_str())
            .arg("detail")
            .arg(&event.detail);
        if let Some(case_id) = &event.case_id {
            cmd.arg("case").arg(case_id);
        }
        let _: String = self.query("append_audit", &cmd).await?;
        Ok(())
    }

    async fn audit_events(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, AuditEvent)>, StoreError> {
        const OP: &str = "audit_events";
        let start = match after {
            // Only a stream id is a cursor; anything else is unknown, as in the embedded store.
            Some(cursor) if is_stream_id(cursor) => format!("({cursor}"),
            Some(_) => return Err(StoreError::NotFound),
            None => "-".to_owned(),
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let entries: Vec<(String, Vec<Vec<u8>>)> = self
            .query(
                OP,
                redis::cmd("XRANGE")
                    .arg(self.inner.keys.audit())
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit),
            )
            .await?;
        entries
            .into_iter()
            .map(|(id, fields)| Ok((id, decode_audit(fields)?)))
            .collect()
    }
}

/// `<ms>-<seq>` or `<ms>`, digits only: what `XADD *` hands out.
fn is_stream_id(s: &str) -> bool {
    let mut parts = s.splitn(2, '-');
    let digits = |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
    parts.next().is_some_and(digits) && parts.next().is_none_or(digits)
}

pub(crate) fn decode_audit(fields: Vec<Vec<u8>>) -> Result<AuditEvent, StoreError> {
    const OP: &str = "audit_events";
    if !fields.len().is_multiple_of(2) {
        return Err(corrupt(OP, "audit"));
    }
    let mut map: HashMap<Vec<u8>, String> = HashMap::with_capacity(fields.len() / 2);
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let value = String::from_utf8(value).map_err(|_| corrupt(OP, "audit"))?;
        map.insert(name, value);
    }
    let mut take = |field: &'static str| map.remove(field.as_bytes());
    let required = |value: Option<String>, field: &'static str| value.ok_or_else(|| corrupt(OP, field));
    let at = required(take("at"), "at")?;
    Ok(AuditEvent {
        at_unix: at.parse().map_err(|_| corrupt(OP, "at"))?,
        actor: required(take("actor"), "actor")?,
        // An action this version does not know is kept as stored (`AuditAction::Other`).
        action: AuditAction::parse(&required(take("action"), "action")?),
        case_id: take("case"),
        detail: required(take("detail"), "detail")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids() {
        assert!(is_stream_id("1795000000000-0"));
        assert!(is_stream_id("17"));
        for bad in ["", "-", "1-", "a-1", "1-2-3", "(1", "+"] {
            assert!(!is_stream_id(bad), "{bad:?}");
        }
    }
}
