//! What the web console holds: its mode (reviewer or admin) with its gateway clients, the launch token
//! and the pages' session secrets, and the one case it has open, with the images in memory only.
//!
//! It must never derive `Debug` on what holds personal data, nor keep an image past the holder that
//! wipes it.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::Mutex;
use tonic::transport::Channel;
use zeroize::Zeroizing;

use crate::clock::{Clock as _, SystemClock};
use crate::crypto::sealing::OpeningKey;
use crate::domain::IdentityFields;
use crate::pb;
use crate::pb::audit_service_client::AuditServiceClient;
use crate::pb::review_service_client::ReviewServiceClient;

/// An image held in memory, wiped when the last holder (the open case, or a response being sent) drops it.
pub(super) struct Secret(pub(super) Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for Secret {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A shared image as a response body; the last holder wipes it.
pub(super) struct ArcSecret(pub(super) Arc<Secret>);

impl AsRef<[u8]> for ArcSecret {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref().as_ref()
    }
}

/// The case this console holds a lease on, opened. No `Debug`: it holds personal data.
pub(super) struct OpenCase {
    pub(super) case_id: String,
    pub(super) purpose: i32,
    pub(super) lease_expires_unix: i64,
    pub(super) submitted_at_unix: i64,
    pub(super) provider: String,
    /// Why the case went to review, in words.
    pub(super) why: &'static str,
    pub(super) supplement_complete: bool,
    pub(super) approved_by: Vec<String>,
    pub(super) approvals_required: u32,
    /// Name, ID number, phone (the images are taken out into `images`); wiped on drop.
    pub(super) fields: IdentityFields,
    /// In [`SLOTS`] order; `None`: not supplied.
    pub(super) images: [Option<Arc<Secret>>; 4],
    /// Random per claim, part of the image URLs.
    pub(super) nonce: String,
}

impl OpenCase {
    pub(super) fn open(mut fields: IdentityFields, claim: pb::ClaimNextResponse) -> anyhow::Result<Self> {
        let take = |v: &mut Vec<u8>| {
            let bytes = Zeroizing::new(std::mem::take(v));
            (!bytes.is_empty()).then(|| Arc::new(Secret(bytes)))
        };
        let images = [
            take(&mut fields.face_image),
            take(&mut fields.id_card_front),
            take(&mut fields.id_card_back),
            take(&mut fields.handheld_id_photo),
        ];
        Ok(Self {
            case_id: claim.case_id,
            purpose: claim.purpose,
            lease_expires_unix: claim.lease_expires_unix,
            submitted_at_unix: claim.submitted_at_unix,
            provider: claim.provider,
            why: crate::decision::ReviewReason::from_code(&claim.review_reason)
                .map_or("not known", crate::decision::ReviewReason::words),
            supplement_complete: claim.supplement_complete,
            approved_by: claim.approved_by,
            approvals_required: claim.approvals_required,
            fields,
            images,
            nonce: crate::crypto::random::id("").context("randomness")?,
        })
    }
}

pub(super) enum Mode {
    Reviewer {
        key: OpeningKey,
        review: ReviewServiceClient<Channel>,
    },
    Admin {
        review: ReviewServiceClient<Channel>,
        audit: AuditServiceClient<Channel>,
    },
}

/// Why the console lost its case (shown once on the page).
#[derive(Default)]
pub(super) struct Held {
    pub(super) case: Option<OpenCase>,
    pub(super) notice: Option<String>,
}

pub(super) struct Console {
    pub(super) mode: Mode,
    pub(super) principal: String,
    /// The token of the launch URL printed last: it opens one page, once.
    pub(super) launch: std::sync::Mutex<Zeroizing<String>>,
    /// The session secrets of the pages opened, newest last.
    pub(super) sessions: std::sync::Mutex<std::collections::VecDeque<Zeroizing<String>>>,
    /// `Host` values the browser may use to reach us.
    pub(super) hosts: Vec<String>,
    pub(super) held: Mutex<Held>,
}

impl Console {
    pub(super) fn review_client(&self) -> ReviewServiceClient<Channel> {
        match &self.mode {
            Mode::Reviewer { review, .. } | Mode::Admin { review, .. } => review.clone(),
        }
    }

    pub(super) fn now() -> i64 {
        SystemClock.now_unix()
    }

    /// Drops the held case if its lease has ended.
    pub(super) fn expire(held: &mut Held) {
        if held.case.as_ref().is_some_and(|c| c.lease_expires_unix <= Self::now()) {
            held.case = None;
            held.notice = Some(
                "The lease on the case ended before a decision: the case went back to the queue and its \
                 material was dropped from this console. Claim again to continue."
                    .into(),
            );
        }
    }
}
