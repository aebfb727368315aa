//! [`AuditLog`](idgate::store::AuditLog): the trail is append-only, read in order of appending, in
//! pages after a cursor the log gave.

use std::sync::Arc;

use idgate::store::{AuditAction, AuditEvent, AuditLog, StoreError};

use super::fixtures::NOW;

async fn audit_trail_is_append_only_and_paged(store: Arc<dyn AuditLog>) {
    for i in 0..5 {
        let event = AuditEvent {
            at_unix: NOW + i,
            actor: "admin-dev".into(),
            action: AuditAction::EraseSubject,
            case_id: Some(format!("vf_{i}")),
            detail: format!("n={i}"),
        };
        store.append_audit(event, 86_400).await.unwrap();
    }
    let first = store.audit_events(None, 3).await.unwrap();
    assert_eq!(
        first.iter().map(|(_, e)| e.detail.as_str()).collect::<Vec<_>>(),
        ["n=0", "n=1", "n=2"]
    );
    let rest = store.audit_events(Some(&first[2].0), 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|(_, e)| e.at_unix).collect::<Vec<_>>(),
        [NOW + 3, NOW + 4]
    );
    assert_eq!(rest[0].1.case_id.as_deref(), Some("vf_3"));
    assert!(store.audit_events(Some(&rest[1].0), 10).await.unwrap().is_empty());
}

/// An event reads back exactly as appended (a case id only when it named one), each under its own
/// id; an empty trail, or a page of none, is empty rather than an error.
async fn audit_events_read_back_as_appended(store: Arc<dyn AuditLog>) {
    assert!(store.audit_events(None, 10).await.unwrap().is_empty(), "an empty trail");
    let gateway = AuditEvent {
        at_unix: NOW,
        actor: "idgate".into(),
        action: AuditAction::PiiRewrapped,
        case_id: None,
        detail: "kek=kek-2 n=3".into(),
    };
    let admin = AuditEvent {
        at_unix: NOW + 1,
        actor: "admin-dev".into(),
        action: AuditAction::EraseSubject,
        case_id: Some("vf_1".into()),
        detail: "erased=1".into(),
    };
    // An action this version does not record (another version wrote it) reads back as stored.
    let other = AuditEvent {
        at_unix: NOW + 2,
        actor: "idgate".into(),
        action: AuditAction::parse("case_expired"),
        case_id: None,
        detail: String::new(),
    };
    store.append_audit(gateway.clone(), 86_400).await.unwrap();
    store.append_audit(admin.clone(), 86_400).await.unwrap();
    store.append_audit(other.clone(), 86_400).await.unwrap();
    let all = store.audit_events(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
        [gateway, admin, other]
    );
    assert_ne!(all[0].0, all[1].0, "each event has its own id");
    assert!(matches!(&all[2].1.action, AuditAction::Other(text) if text == "case_expired"));
    assert!(store.audit_events(None, 0).await.unwrap().is_empty(), "a page of none");
}

/// Only a cursor of the trail's own form is accepted: anything else is refused as unknown, never
/// read as "from the start".
async fn a_malformed_audit_cursor_is_refused(store: Arc<dyn AuditLog>) {
    let event = AuditEvent {
        at_unix: NOW,
        actor: "admin-dev".into(),
        action: AuditAction::EraseSubject,
        case_id: None,
        detail: "erased=0".into(),
    };
    store.append_audit(event, 86_400).await.unwrap();
    for cursor in ["", "not-a-cursor", "(1", "+", "-1"] {
        assert!(
            matches!(store.audit_events(Some(cursor), 10).await, Err(StoreError::NotFound)),
            "{cursor:?}"
        );
    }
}

on_every_backend!(
    audit_trail_is_append_only_and_paged,
    audit_events_read_back_as_appended,
    a_malformed_audit_cursor_is_refused,
);
