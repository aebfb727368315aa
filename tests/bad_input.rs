//! The bad-input matrix: every field of every RPC with empty, oversized,
//! wrong-type, wrong-encoding, boundary and malicious values, against a real gateway over mutual
//! TLS. Each row names the field, the value class, and the expected code and reason (docs/api.md §2 and
//! §4); a row that should be accepted says so. No answer may be a panic, a hang (every call has a
//! deadline) or a status that echoes the input.
//!
//! `memory_stays_flat` runs the matrix many times against `idgate serve --dev` as a child process
//! and bounds the growth of its resident memory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::Duration;

use common::{GatewayProcess, Person, TestGateway, id_number, png, reason};
use idgate::crypto::sealing::{self, Context};
use idgate::domain::IdentityFields;
use idgate::pb;
use idgate::pb::audit_service_client::AuditServiceClient;
use idgate::pb::review_service_client::ReviewServiceClient;
use idgate::pb::verification_service_client::VerificationServiceClient;
use tonic::Code;
use tonic::transport::Channel;

/// A raw protobuf body, sent as it is (for wrong wire types and bad UTF-8 that no typed client can
/// produce).
#[derive(Clone, Default, PartialEq)]
struct RawMessage(Vec<u8>);

impl std::fmt::Debug for RawMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawMessage({} bytes)", self.0.len())
    }
}

impl prost::Message for RawMessage {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        buf.put_slice(&self.0);
    }
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }
    fn encoded_len(&self) -> usize {
        self.0.len()
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}

/// One call of the matrix.
enum Call {
    Verify(pb::VerifyRequest),
    RawVerify(Vec<u8>),
    Supplement(pb::SubmitSupplementRequest),
    GetVerification(String),
    Watch(String),
    Erase(String),
    RegisterKey(Vec<u8>),
    Decide(pb::SubmitDecisionRequest),
    Release(String),
    Audit(pb::ListAuditEventsRequest),
}

/// What a row expects: success, or a code with a reason (`None`: the transport's own refusal,
/// which carries no reason detail).
#[derive(Clone, Copy, Debug)]
enum Expect {
    Ok,
    Err(Code, Option<&'static str>),
}

struct Row {
    field: &'static str,
    class: &'static str,
    expect: Expect,
    call: Call,
}

/// Clients of every role, the gateway's sealing key, and a case pending review (for supplements).
struct Ctx {
    onboarding: VerificationServiceClient<Channel>,
    reviewer: ReviewServiceClient<Channel>,
    admin: AuditServiceClient<Channel>,
    channel: Channel,
    key: pb::GetSealingKeyResponse,
    pending: String,
    verified: String,
}

const MIB: usize = 1024 * 1024;

impl Ctx {
    async fn new(addr: &str, certs: &std::path::Path) -> Self {
        let connect = |stem: &'static str| idgate::client::connect(addr, certs, stem);
        let channel = connect("onboarding").await.expect("onboarding");
        let mut onboarding = VerificationServiceClient::new(channel.clone())
            .max_decoding_message_size(MIB)
            .max_encoding_message_size(usize::MAX);
        let key = onboarding
            .get_sealing_key(pb::GetSealingKeyRequest {})
            .await
            .expect("sealing key")
            .into_inner();
        let pending = common::verify(
            &mut onboarding,
            pb::Purpose::Anchor,
            "setup-pending",
            &Person::adult("945"),
        )
        .await
        .expect("pending case");
        assert_eq!(pending.status, pb::Status::PendingReview as i32);
        let verified = common::verify(
            &mut onboarding,
            pb::Purpose::ShortVideo,
            "setup-verified",
            &Person::adult("123"),
        )
        .await
        .expect("verified case");
        Self {
            onboarding,
            reviewer: ReviewServiceClient::new(connect("reviewer-1").await.expect("reviewer")),
            admin: AuditServiceClient::new(connect("admin").await.expect("admin")),
            channel,
            key,
            pending: pending.verification_id,
            verified: verified.verification_id,
        }
    }

    /// Sends one row's call with a deadline; the answer's code and reason.
    async fn send(&mut self, call: Call) -> Result<(), tonic::Status> {
        fn timed<T>(message: T) -> tonic::Request<T> {
            let mut request = tonic::Request::new(message);
            request.set_timeout(Duration::from_secs(20));
            request
        }
        match call {
            Call::Verify(m) => self.onboarding.verify(timed(m)).await.map(drop),
            Call::RawVerify(bytes) => {
                let mut grpc = tonic::client::Grpc::new(self.channel.clone());
                grpc.ready()
                    .await
                    .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
                let codec = tonic_prost::ProstCodec::<RawMessage, pb::VerifyResponse>::default();
                let path = http::uri::PathAndQuery::from_static("/idgate.v1.VerificationService/Verify");
                grpc.unary(timed(RawMessage(bytes)), path, codec).await.map(drop)
            }
            Call::Supplement(m) => self.onboarding.submit_supplement(timed(m)).await.map(drop),
            Call::GetVerification(id) => self
                .onboarding
                .get_verification(timed(pb::GetVerificationRequest { verification_id: id }))
                .await
                .map(drop),
            Call::Watch(id) => {
                let mut stream = self
                    .onboarding
                    .watch_verification(timed(pb::GetVerificationRequest { verification_id: id }))
                    .await?
                    .into_inner();
                while stream.message().await?.is_some() {}
                Ok(())
            }
            Call::Erase(account_id) => self
                .onboarding
                .erase_subject(timed(pb::EraseSubjectRequest { account_id }))
                .await
                .map(drop),
            Call::RegisterKey(public_key) => self
                .reviewer
                .register_reviewer_key(timed(pb::RegisterReviewerKeyRequest { public_key }))
                .await
                .map(drop),
            Call::Decide(m) => self.reviewer.submit_decision(timed(m)).await.map(drop),
            Call::Release(case_id) => self
                .reviewer
                .release_case(timed(pb::ReleaseCaseRequest { case_id }))
                .await
                .map(drop),
            Call::Audit(m) => self.admin.list_audit_events(timed(m)).await.map(drop),
        }
    }
}

fn adult() -> IdentityFields {
    Person::adult("123").fields()
}

fn sealed(key: &pb::GetSealingKeyResponse, context: &Context, plaintext: &[u8]) -> pb::SealedPayload {
    let s = sealing::seal(&key.public_key, context, plaintext).expect("seal");
    pb::SealedPayload {
        key_id: key.key_id.clone(),
        enc: s.enc,
        ciphertext: s.ciphertext.into(),
    }
}

/// The builders of the rows: a valid request with one thing changed.
struct Rows<'a> {
    ctx: &'a Ctx,
    round: usize,
    n: usize,
}

impl Rows<'_> {
    fn rid(&mut self) -> String {
        self.n += 1;
        format!("bad-{}-{}", self.round, self.n)
    }

    /// A `VerifyRequest` for `purpose` with `fields`, then `edit` applied before sealing-relevant ids
    /// are bound (the seal always matches the sent ids unless `edit` changes the payload itself).
    fn verify(
        &mut self,
        purpose: pb::Purpose,
        fields: &IdentityFields,
        edit: impl FnOnce(&mut pb::VerifyRequest),
    ) -> Call {
        let rid = self.rid();
        let mut request = common::sealed_request(&self.ctx.key, purpose, "acct-bad", &rid, fields, None);
        edit(&mut request);
        Call::Verify(request)
    }

    /// Ids changed before sealing, so that only the id rule can refuse them.
    fn verify_ids(&mut self, account: &str, request_id: &str) -> Call {
        Call::Verify(common::sealed_request(
            &self.ctx.key,
            pb::Purpose::ShortVideo,
            account,
            request_id,
            &adult(),
            None,
        ))
    }

    fn with(&mut self, purpose: pb::Purpose, edit: impl FnOnce(&mut IdentityFields)) -> Call {
        let mut fields = adult();
        edit(&mut fields);
        self.verify(purpose, &fields, |_| {})
    }

    fn supplement(
        &mut self,
        id: &str,
        edit: impl FnOnce(&mut IdentityFields, &mut pb::SubmitSupplementRequest),
    ) -> Call {
        let rid = self.rid();
        let mut fields = IdentityFields::default();
        [fields.id_card_front, fields.id_card_back, fields.handheld_id_photo] = common::supplement_images();
        let mut request = pb::SubmitSupplementRequest {
            verification_id: id.into(),
            request_id: rid,
            payload: None,
        };
        edit(&mut fields, &mut request);
        let plaintext = idgate::material::encode_fields(&fields);
        let context = Context::supplement(&request.verification_id, &request.request_id);
        request
            .payload
            .get_or_insert_with(|| sealed(&self.ctx.key, &context, &plaintext));
        Call::Supplement(request)
    }
}

/// PNG bytes padded with trailing zeros to `len` (the header still says 640×480).
fn png_of_len(len: usize) -> Vec<u8> {
    let mut image = png(640, 480);
    image.resize(len, 0);
    image
}

fn truncated_jpeg() -> Vec<u8> {
    // SOI, APP0 JFIF, and the start of SOF0 cut off before the dimensions.
    let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
    jpeg.extend(b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xc0\x00\x11");
    jpeg
}

/// Protobuf: field `number` as a length-delimited value.
fn field_bytes(number: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![(number << 3) | 2];
    prost::encoding::encode_varint(value.len() as u64, &mut out);
    out.extend_from_slice(value);
    out
}

fn rows(ctx: &Ctx, round: usize) -> Vec<Row> {
    use Code::{AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, OutOfRange};
    use pb::Purpose::{Anchor, ShortVideo};
    let mut r = Rows { ctx, round, n: 0 };
    let err = |code, reason| Expect::Err(code, Some(reason));
    let bad = |reason| Expect::Err(InvalidArgument, Some(reason));
    let unopenable = bad("PAYLOAD_UNOPENABLE");
    let long = |n: usize| "a".repeat(n);
    let mut rows = Vec::new();
    let mut row = |field, class, expect, call| {
        rows.push(Row {
            field,
            class,
            expect,
            call,
        })
    };

    // VerifyRequest.request_id / account_id: [A-Za-z0-9._:-]{1,128}
    for (field, is_request) in [("request_id", true), ("account_id", false)] {
        let reason = if is_request {
            "REQUEST_ID_INVALID"
        } else {
            "ACCOUNT_ID_INVALID"
        };
        let ids = |v: &str, r: &mut Rows| {
            if is_request {
                r.verify_ids("acct-bad", v)
            } else {
                let rid = r.rid();
                r.verify_ids(v, &rid)
            }
        };
        row(field, "empty", bad(reason), ids("", &mut r));
        row(field, "129 chars (oversized)", bad(reason), ids(&long(129), &mut r));
        row(field, "10 000 chars", bad(reason), ids(&long(10_000), &mut r));
        row(field, "space inside", bad(reason), ids("a b", &mut r));
        row(field, "CJK (wrong alphabet)", bad(reason), ids("请求一", &mut r));
        row(field, "NUL byte", bad(reason), ids("a\0b", &mut r));
        row(
            field,
            "newline (log injection)",
            bad(reason),
            ids("a\nlevel=error", &mut r),
        );
        let boundary = if is_request {
            format!("{}{}", long(120), &format!("{round:08}"))
        } else {
            long(128)
        };
        row(field, "128 chars (boundary)", Expect::Ok, ids(&boundary, &mut r));
    }
    // VerifyRequest.purpose
    for (class, value) in [
        ("UNSPECIFIED (0)", 0),
        ("unknown enum 4", 4),
        ("unknown enum -1", -1),
        ("unknown enum 2^31-1", i32::MAX),
    ] {
        let call = r.verify(ShortVideo, &adult(), |m| {
            m.purpose = value;
        });
        row("purpose", class, bad("PURPOSE_INVALID"), call);
    }
    // VerifyRequest.consent
    let call = r.verify(ShortVideo, &adult(), |m| m.consent = None);
    row("consent", "missing", bad("CONSENT_MISSING"), call);
    let call = r.verify(ShortVideo, &adult(), |m| {
        m.consent.as_mut().expect("consent").policy_version.clear()
    });
    row(
        "consent.policy_version",
        "empty (no consent given)",
        bad("CONSENT_MISSING"),
        call,
    );
    let call = r.verify(ShortVideo, &adult(), |m| {
        m.consent.as_mut().expect("consent").policy_version = long(10_000)
    });
    row("consent.policy_version", "10 000 chars", bad("CONSENT_INVALID"), call);
    let call = r.verify(ShortVideo, &adult(), |m| {
        m.consent.as_mut().expect("consent").granted_at_unix += 86_400
    });
    row(
        "consent.granted_at_unix",
        "a day in the future",
        bad("CONSENT_INVALID"),
        call,
    );
    let call = r.verify(ShortVideo, &adult(), |m| {
        m.consent.as_mut().expect("consent").granted_at_unix = i64::MAX
    });
    row("consent.granted_at_unix", "i64::MAX", bad("CONSENT_INVALID"), call);
    let call = r.verify(ShortVideo, &adult(), |m| {
        m.consent.as_mut().expect("consent").granted_at_unix = i64::MIN
    });
    row("consent.granted_at_unix", "i64::MIN", bad("CONSENT_INVALID"), call);
    // VerifyRequest.payload (docs/api.md §2: one answer whatever the cause)
    let call = r.verify(ShortVideo, &adult(), |m| m.payload = None);
    row("payload", "missing", bad("PAYLOAD_MISSING"), call);
    type Edit = (&'static str, &'static str, fn(&mut pb::SealedPayload));
    let edits: [Edit; 10] = [
        ("payload.key_id", "empty", |p| p.key_id.clear()),
        ("payload.key_id", "unknown id", |p| p.key_id = "sk-unknown".into()),
        ("payload.key_id", "10 000 chars", |p| p.key_id = "k".repeat(10_000)),
        ("payload.enc", "empty", |p| p.enc.clear()),
        ("payload.enc", "31 bytes (wrong length)", |p| p.enc.truncate(31)),
        ("payload.enc", "33 bytes (wrong length)", |p| p.enc.push(0)),
        ("payload.enc", "all-zero X25519 share", |p| p.enc = vec![0; 32]),
        ("payload.ciphertext", "empty", |p| p.ciphertext.clear()),
        ("payload.ciphertext", "one bit flipped", |p| {
            let mut flipped = p.ciphertext.to_vec();
            flipped[0] ^= 1;
            p.ciphertext = flipped.into();
        }),
        ("payload.ciphertext", "tag cut off", |p| {
            let n = p.ciphertext.len() - 16;
            p.ciphertext.truncate(n);
        }),
    ];
    for (field, class, edit) in edits {
        let call = r.verify(ShortVideo, &adult(), |m| edit(m.payload.as_mut().expect("payload")));
        row(field, class, unopenable, call);
    }
    let call = r.verify(ShortVideo, &adult(), |m| m.purpose = pb::Purpose::Radio as i32);
    row("payload (AAD)", "sealed for another purpose", unopenable, call);
    let call = r.verify(ShortVideo, &adult(), |m| m.account_id = "acct-other".into());
    row("payload (AAD)", "sealed for another account", unopenable, call);
    let call = r.verify(ShortVideo, &adult(), |m| {
        let (p, a, q) = (m.purpose, m.account_id.clone(), m.request_id.clone());
        m.payload = Some(sealed(
            &ctx.key,
            &Context::identity(p, &a, &q),
            b"\xff\xff\xff not protobuf",
        ));
    });
    row("payload (plaintext)", "not an IdentityPayload", unopenable, call);
    let call = r.verify(ShortVideo, &adult(), |m| {
        let (a, q) = (m.account_id.clone(), m.request_id.clone());
        let plaintext = field_bytes(1, b"\xc3\x28");
        m.payload = Some(sealed(&ctx.key, &Context::identity(m.purpose, &a, &q), &plaintext));
    });
    row("payload.name", "bad UTF-8 inside the sealed protobuf", unopenable, call);

    // IdentityPayload.name
    row(
        "name",
        "empty",
        bad("NAME_MISSING"),
        r.with(ShortVideo, |f| f.name.clear()),
    );
    row(
        "name",
        "whitespace only",
        bad("NAME_MISSING"),
        r.with(ShortVideo, |f| f.name = " \u{3000} ".into()),
    );
    row(
        "name",
        "10 000 CJK chars",
        bad("NAME_INVALID"),
        r.with(ShortVideo, |f| f.name = "张".repeat(10_000)),
    );
    row(
        "name",
        "Latin letters",
        bad("NAME_INVALID"),
        r.with(ShortVideo, |f| f.name = "Alice".into()),
    );
    row(
        "name",
        "emoji",
        bad("NAME_INVALID"),
        r.with(ShortVideo, |f| f.name = "张三😀".into()),
    );
    row(
        "name",
        "inner space",
        bad("NAME_INVALID"),
        r.with(ShortVideo, |f| f.name = "张 三".into()),
    );
    row(
        "name",
        "leading ·",
        bad("NAME_INVALID"),
        r.with(ShortVideo, |f| f.name = "·张三".into()),
    );
    row(
        "name",
        "<script> (malicious)",
        bad("NAME_INVALID"),
        r.with(ShortVideo, |f| f.name = "<script>".into()),
    );
    row(
        "name",
        "with · (accepted)",
        Expect::Ok,
        r.with(Anchor, |f| f.name = "阿卜杜热合曼·麦麦提".into()),
    );
    row(
        "name",
        "Ext. B 𠀀 and Ext. A 㐀 (accepted)",
        Expect::Ok,
        r.with(Anchor, |f| f.name = "𠀀㐀".into()),
    );
    row(
        "name",
        "rare CJK with · (accepted)",
        Expect::Ok,
        r.with(ShortVideo, |f| f.name = "㐀·𠀀".into()),
    );
    row(
        "name",
        "look-alike dot ・ (accepted)",
        Expect::Ok,
        r.with(ShortVideo, |f| f.name = "艾力・买买提".into()),
    );
    // IdentityPayload.id_number
    row(
        "id_number",
        "empty",
        bad("ID_NUMBER_MISSING"),
        r.with(ShortVideo, |f| f.id_number.clear()),
    );
    row(
        "id_number",
        "17 digits",
        bad("ID_NUMBER_FORMAT"),
        r.with(ShortVideo, |f| f.id_number.truncate(17)),
    );
    row(
        "id_number",
        "10 000 digits",
        bad("ID_NUMBER_FORMAT"),
        r.with(ShortVideo, |f| f.id_number = "1".repeat(10_000)),
    );
    row(
        "id_number",
        "full-width digits",
        bad("ID_NUMBER_FORMAT"),
        r.with(ShortVideo, |f| f.id_number = "１".repeat(18)),
    );
    row(
        "id_number",
        "wrong check digit",
        bad("ID_NUMBER_CHECKSUM"),
        r.with(ShortVideo, |f| {
            let last = if f.id_number.ends_with('0') { '1' } else { '0' };
            f.id_number.pop();
            f.id_number.push(last);
        }),
    );
    row(
        "id_number",
        "birth date in the future",
        bad("ID_NUMBER_BIRTH_DATE"),
        r.with(ShortVideo, |f| f.id_number = id_number("20991231", "123")),
    );
    row(
        "id_number",
        "30 February",
        bad("ID_NUMBER_BIRTH_DATE"),
        r.with(ShortVideo, |f| f.id_number = id_number("19900230", "123")),
    );
    row(
        "id_number",
        "a minor for ANCHOR",
        err(FailedPrecondition, "UNDERAGE"),
        r.with(Anchor, |f| f.id_number = id_number("20150101", "123")),
    );
    row(
        "id_number",
        "lower-case x (accepted)",
        Expect::Ok,
        r.with(ShortVideo, |f| f.id_number = "11010519491231002x".into()),
    );
    // IdentityPayload.phone
    row(
        "phone",
        "empty for ANCHOR",
        bad("PHONE_MISSING"),
        r.with(Anchor, |f| f.phone.clear()),
    );
    row(
        "phone",
        "too short",
        bad("PHONE_INVALID"),
        r.with(ShortVideo, |f| f.phone = "12345".into()),
    );
    row(
        "phone",
        "10 000 digits",
        bad("PHONE_INVALID"),
        r.with(ShortVideo, |f| f.phone = "1".repeat(10_000)),
    );
    row(
        "phone",
        "letters",
        bad("PHONE_INVALID"),
        r.with(ShortVideo, |f| f.phone = "1380013800a".into()),
    );
    row(
        "phone",
        "+86 with separators (accepted)",
        Expect::Ok,
        r.with(ShortVideo, |f| f.phone = "+86 138-0013-8000".into()),
    );
    // IdentityPayload images
    let face = "face_image";
    row(
        face,
        "empty for ANCHOR",
        bad("FACE_IMAGE_MISSING"),
        r.with(Anchor, |f| f.face_image.clear()),
    );
    row(
        face,
        "4 MiB + 1 byte",
        bad("IMAGE_TOO_LARGE"),
        r.with(Anchor, |f| f.face_image = png_of_len(4 * MIB + 1)),
    );
    // Within docs/api.md's 4 MiB, but over Tencent FaceID's 3 MiB of base64: the adapter refuses it
    // without a (billed) call, and the caller is told to take a new photo.
    row(
        face,
        "exactly 4 MiB (local boundary; over the provider's limit)",
        err(FailedPrecondition, "FACE_IMAGE_UNUSABLE"),
        r.with(Anchor, |f| f.face_image = png_of_len(4 * MIB)),
    );
    row(
        "id_card_front",
        "exactly 4 MiB (boundary, accepted)",
        Expect::Ok,
        r.with(ShortVideo, |f| f.id_card_front = png_of_len(4 * MIB)),
    );
    row(
        face,
        "PNG claiming 100 000 × 100 000",
        bad("IMAGE_DIMENSIONS"),
        r.with(Anchor, |f| f.face_image = png(100_000, 100_000)),
    );
    row(
        face,
        "PNG 63 × 63 (below the minimum)",
        bad("IMAGE_DIMENSIONS"),
        r.with(Anchor, |f| f.face_image = png(63, 63)),
    );
    row(
        face,
        "PNG 8192 × 64 (boundary, accepted)",
        Expect::Ok,
        r.with(Anchor, |f| f.face_image = png(8192, 64)),
    );
    row(
        face,
        "truncated JPEG",
        bad("IMAGE_MALFORMED"),
        r.with(Anchor, |f| f.face_image = truncated_jpeg()),
    );
    row(
        face,
        "PNG signature without IHDR",
        bad("IMAGE_MALFORMED"),
        r.with(Anchor, |f| f.face_image = b"\x89PNG\r\n\x1a\n".to_vec()),
    );
    row(
        face,
        "GIF (wrong type)",
        bad("IMAGE_FORMAT"),
        r.with(Anchor, |f| f.face_image = b"GIF89a\x40\x00\x40\x00".to_vec()),
    );
    row(
        face,
        "HTML (malicious)",
        bad("IMAGE_FORMAT"),
        r.with(Anchor, |f| f.face_image = b"<html><script>".to_vec()),
    );
    for (field, class) in [
        ("id_card_front", "GIF"),
        ("id_card_back", "truncated JPEG"),
        ("handheld_id_photo", "4 MiB + 1 byte"),
    ] {
        let reason = match class {
            "GIF" => "IMAGE_FORMAT",
            "truncated JPEG" => "IMAGE_MALFORMED",
            _ => "IMAGE_TOO_LARGE",
        };
        let call = r.with(ShortVideo, |f| match field {
            "id_card_front" => f.id_card_front = b"GIF89a".to_vec(),
            "id_card_back" => f.id_card_back = truncated_jpeg(),
            _ => f.handheld_id_photo = png_of_len(4 * MIB + 1),
        });
        row(field, class, bad(reason), call);
    }
    // The whole message: beyond the server's limit, wrong wire type, bad UTF-8.
    let call = r.verify(ShortVideo, &adult(), |m| {
        m.payload.as_mut().expect("payload").ciphertext = vec![0; 64 * MIB].into()
    });
    row("VerifyRequest", "64 MiB message", Expect::Err(OutOfRange, None), call);
    row(
        "VerifyRequest.request_id",
        "bad UTF-8",
        bad("MESSAGE_MALFORMED"),
        Call::RawVerify(field_bytes(1, b"\xc3\x28")),
    );
    row(
        "VerifyRequest.purpose",
        "wrong wire type (bytes for an enum)",
        bad("MESSAGE_MALFORMED"),
        Call::RawVerify(field_bytes(3, b"\x01")),
    );
    row(
        "VerifyRequest",
        "truncated protobuf",
        bad("MESSAGE_MALFORMED"),
        Call::RawVerify(vec![0x0a, 0x7f, b'a']),
    );
    row(
        "VerifyRequest",
        "empty message",
        bad("REQUEST_ID_INVALID"),
        Call::RawVerify(Vec::new()),
    );

    // SubmitSupplementRequest
    let pending = ctx.pending.clone();
    row(
        "verification_id",
        "empty",
        err(NotFound, "NOT_FOUND"),
        r.supplement("", |_, _| {}),
    );
    row(
        "verification_id",
        "unknown",
        err(NotFound, "NOT_FOUND"),
        r.supplement("vf_0000000000000000", |_, _| {}),
    );
    row(
        "verification_id",
        "10 000 chars",
        err(NotFound, "NOT_FOUND"),
        r.supplement(&long(10_000), |_, _| {}),
    );
    row(
        "verification_id",
        "a case not pending",
        err(FailedPrecondition, "NOT_PENDING"),
        r.supplement(&ctx.verified, |_, _| {}),
    );
    row(
        "request_id",
        "empty",
        bad("REQUEST_ID_INVALID"),
        r.supplement(&pending, |_, m| m.request_id.clear()),
    );
    row(
        "request_id",
        "129 chars",
        bad("REQUEST_ID_INVALID"),
        r.supplement(&pending, |_, m| m.request_id = long(129)),
    );
    row(
        "payload",
        "empty SealedPayload",
        unopenable,
        r.supplement(&pending, |_, m| m.payload = Some(pb::SealedPayload::default())),
    );
    let mut call = r.supplement(&pending, |_, _| {});
    if let Call::Supplement(m) = &mut call {
        m.payload = None;
    }
    row("payload", "missing", bad("PAYLOAD_MISSING"), call);
    let call = r.supplement(&pending, |_, m| {
        m.payload = Some(sealed(&ctx.key, &Context::supplement("vf_other", &m.request_id), b""));
    });
    row("payload (AAD)", "sealed for another case", unopenable, call);
    let call = r.supplement(&pending, |_, m| {
        let mut p = sealed(&ctx.key, &Context::supplement(&m.verification_id, &m.request_id), b"");
        p.enc = vec![0; 32];
        m.payload = Some(p);
    });
    row("payload.enc", "all-zero X25519 share", unopenable, call);
    row(
        "id_card_front",
        "PNG 100 000 × 100 000",
        bad("IMAGE_DIMENSIONS"),
        r.supplement(&pending, |f, _| f.id_card_front = png(100_000, 100_000)),
    );
    row(
        "handheld_id_photo",
        "4 MiB + 1 byte",
        bad("IMAGE_TOO_LARGE"),
        r.supplement(&pending, |f, _| f.handheld_id_photo = png_of_len(4 * MIB + 1)),
    );

    // GetVerification / WatchVerification.verification_id, EraseSubject.account_id
    for (class, id) in [
        ("empty", String::new()),
        ("unknown", "vf_0000000000000000".into()),
        ("10 000 chars", long(10_000)),
        ("NUL and newline", "vf\0\n".into()),
    ] {
        row(
            "GetVerification.verification_id",
            class,
            err(NotFound, "NOT_FOUND"),
            Call::GetVerification(id.clone()),
        );
        row(
            "WatchVerification.verification_id",
            class,
            err(NotFound, "NOT_FOUND"),
            Call::Watch(id),
        );
    }
    row(
        "EraseSubject.account_id",
        "empty",
        bad("ACCOUNT_ID_INVALID"),
        Call::Erase(String::new()),
    );
    row(
        "EraseSubject.account_id",
        "129 chars",
        bad("ACCOUNT_ID_INVALID"),
        Call::Erase(long(129)),
    );
    row(
        "EraseSubject.account_id",
        "CJK",
        bad("ACCOUNT_ID_INVALID"),
        Call::Erase("账户".into()),
    );
    row(
        "EraseSubject.account_id",
        "unknown (nothing to erase)",
        Expect::Ok,
        Call::Erase("acct-nobody".into()),
    );

    // ReviewService
    let key_bad = bad("REVIEWER_KEY_INVALID");
    row(
        "RegisterReviewerKey.public_key",
        "empty",
        key_bad,
        Call::RegisterKey(Vec::new()),
    );
    row(
        "RegisterReviewerKey.public_key",
        "31 bytes",
        key_bad,
        Call::RegisterKey(vec![9; 31]),
    );
    row(
        "RegisterReviewerKey.public_key",
        "33 bytes",
        key_bad,
        Call::RegisterKey(vec![9; 33]),
    );
    row(
        "RegisterReviewerKey.public_key",
        "all-zero X25519 key",
        key_bad,
        Call::RegisterKey(vec![0; 32]),
    );
    row(
        "RegisterReviewerKey.public_key",
        "1 MiB (over the review services' message limit)",
        Expect::Err(OutOfRange, None),
        Call::RegisterKey(vec![9; MIB]),
    );
    row(
        "RegisterReviewerKey.public_key",
        "64 KiB",
        key_bad,
        Call::RegisterKey(vec![9; 64 * 1024]),
    );
    let decide = |case_id: &str, decision: i32, reason_code: &str| {
        Call::Decide(pb::SubmitDecisionRequest {
            case_id: case_id.into(),
            decision,
            reason_code: reason_code.into(),
        })
    };
    row(
        "SubmitDecision.decision",
        "UNSPECIFIED",
        bad("DECISION_INVALID"),
        decide(&pending, 0, "OK"),
    );
    row(
        "SubmitDecision.decision",
        "unknown enum 7",
        bad("DECISION_INVALID"),
        decide(&pending, 7, "OK"),
    );
    row(
        "SubmitDecision.reason_code",
        "empty",
        bad("REASON_CODE_INVALID"),
        decide(&pending, 1, ""),
    );
    row(
        "SubmitDecision.reason_code",
        "65 chars",
        bad("REASON_CODE_INVALID"),
        decide(&pending, 1, &"A".repeat(65)),
    );
    row(
        "SubmitDecision.reason_code",
        "lower case / CJK",
        bad("REASON_CODE_INVALID"),
        decide(&pending, 2, "不行"),
    );
    row(
        "SubmitDecision.case_id",
        "empty",
        err(FailedPrecondition, "NOT_PENDING"),
        decide("", 1, "OK"),
    );
    row(
        "SubmitDecision.case_id",
        "not claimed by this reviewer",
        err(FailedPrecondition, "LEASE_EXPIRED"),
        decide(&pending, 1, "OK"),
    );
    row(
        "ReleaseCase.case_id",
        "empty",
        err(FailedPrecondition, "NOT_PENDING"),
        Call::Release(String::new()),
    );
    row(
        "ReleaseCase.case_id",
        "10 000 chars",
        err(FailedPrecondition, "NOT_PENDING"),
        Call::Release(long(10_000)),
    );
    row(
        "ReleaseCase.case_id",
        "not claimed by this reviewer",
        err(FailedPrecondition, "LEASE_EXPIRED"),
        Call::Release(pending.clone()),
    );
    // AuditService (admin)
    let audit = |m: pb::ListAuditEventsRequest| Call::Audit(m);
    row(
        "ListAuditEvents.page_token",
        "garbage",
        err(InvalidArgument, "PAGE_TOKEN_INVALID"),
        audit(pb::ListAuditEventsRequest {
            page_token: "\u{1}nonsense".into(),
            ..Default::default()
        }),
    );
    row(
        "ListAuditEvents.page_size",
        "u32::MAX (capped)",
        Expect::Ok,
        audit(pb::ListAuditEventsRequest {
            page_size: u32::MAX,
            ..Default::default()
        }),
    );
    row(
        "ListAuditEvents.case_id",
        "10 000 chars",
        Expect::Ok,
        audit(pb::ListAuditEventsRequest {
            case_id: long(10_000),
            ..Default::default()
        }),
    );
    row(
        "ListAuditEvents.principal",
        "10 000 chars",
        Expect::Ok,
        audit(pb::ListAuditEventsRequest {
            principal: long(10_000),
            ..Default::default()
        }),
    );
    // A replay: the request id of an answered case with other content.
    let mut other = Person::adult("123");
    other.name = "李四".into();
    let replay = common::sealed_request(&ctx.key, ShortVideo, "acct-1", "setup-verified", &other.fields(), None);
    row(
        "request_id",
        "reused with other content",
        err(AlreadyExists, "REQUEST_ID_REUSED"),
        Call::Verify(replay),
    );
    rows
}

/// Runs every row once; returns the rows whose answer differed from the expectation.
async fn run_matrix(ctx: &mut Ctx, round: usize) -> Vec<String> {
    let mut wrong = Vec::new();
    for row in rows(ctx, round) {
        let started = std::time::Instant::now();
        let got = ctx.send(row.call).await;
        if started.elapsed() > Duration::from_secs(2) {
            eprintln!("slow row: {} / {}: {:.1?}", row.field, row.class, started.elapsed());
        }
        let fine = match (&row.expect, &got) {
            (Expect::Ok, Ok(())) => true,
            (Expect::Err(code, want), Err(status)) => {
                status.code() == *code && reason(status).as_deref() == *want && !common_leak(status)
            }
            _ => false,
        };
        if !fine {
            let got = match &got {
                Ok(()) => "OK".to_owned(),
                Err(s) => format!("{:?} {:?}", s.code(), reason(s)),
            };
            wrong.push(format!(
                "{} / {}: expected {:?}, got {got}",
                row.field, row.class, row.expect
            ));
        }
    }
    wrong
}

/// A status that carries something of the personal data the matrix sends.
fn common_leak(status: &tonic::Status) -> bool {
    let text = status.message();
    ["张", "𠀀", "13800138000", "110105", "<script>", "aaaaaaaaaaaa"]
        .iter()
        .any(|p| text.contains(p))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_of_every_rpc_answers_bad_input_with_the_right_status() {
    let gateway = TestGateway::start().await;
    let mut ctx = Ctx::new(&gateway.addr.to_string(), &gateway.certs()).await;
    let wrong = run_matrix(&mut ctx, 0).await;
    assert!(
        wrong.is_empty(),
        "{} rows answered wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    gateway.stop().await;
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The gateway's resident memory after warm-up rounds of the matrix, and after many more: the
/// growth is bounded (no leak per bad request). Measured on a child `idgate serve --dev` process so
/// that the test's own buffers do not count; warm-up first, so that allocator pools, TLS sessions
/// and lazily built tables are already in place when the baseline is taken. glibc's mmap threshold
/// is pinned at its default (128 KiB) in the child: otherwise it rises after the first freed 4 MiB
/// buffer and later ones are cached in per-thread arenas, which shows as RSS growth that depends on
/// how many threads ran rather than on what was kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat() {
    const WARMUP: usize = 1;
    let rounds: usize = std::env::var("IDGATE_BAD_INPUT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let process = GatewayProcess::start(&dir.path().join("dev"), &[("MALLOC_MMAP_THRESHOLD_", "131072")]).await;
    let pid = process.child.id();
    let mut ctx = Ctx::new(&process.addr.to_string(), &process.dev_dir).await;
    for round in 0..WARMUP {
        let wrong = run_matrix(&mut ctx, 1000 + round).await;
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
    let before = rss_kib(pid);
    for round in 0..rounds {
        run_matrix(&mut ctx, 2000 + round).await;
    }
    let after = rss_kib(pid);
    eprintln!(
        "gateway RSS: {before} KiB after {WARMUP} warm-up rounds, {after} KiB after {rounds} more ({:+} KiB)",
        after as i64 - before as i64
    );
    assert!(after < before + 64 * 1024, "RSS grew from {before} KiB to {after} KiB");
}

/// Each method takes a request of its own size, refused on the message's header before the body is
/// read: a request one byte over the limit, of which only the header and 1 KiB are sent, is answered
/// `OUT_OF_RANGE` while the rest is held (before, every method of the verification service waited for
/// 18 MiB, and the review service's for 1 MiB).
#[tokio::test]
async fn every_method_refuses_a_request_over_its_own_size_before_reading_it() {
    use idgate::transport::auth::{Role, Rpc, allowed_roles};
    let gw = common::TestGateway::start().await;
    let limits = idgate::gateway::server_limits(&common::TestGateway::config().server);
    for rpc in Rpc::ALL {
        let role = allowed_roles(rpc)[0];
        let stem = match role {
            Role::Onboarding => "onboarding",
            Role::Reviewer => "reviewer-1",
            Role::Admin => "admin",
        };
        let limit = limits.max_request_bytes(rpc);
        let expected = match rpc {
            Rpc::Verify => 18 << 20,
            Rpc::SubmitSupplement => 12 * 1024 * 1024 + 64 * 1024,
            _ => 128 * 1024,
        };
        assert_eq!(limit, expected, "{rpc:?}");
        let (call, release) = common::call_with_held_body(gw.channel(stem).await, rpc.path(), (limit + 1) as u32, 1024);
        let status = common::answered_while_held(call, &format!("{rpc:?}")).await;
        assert_eq!(status.code(), Code::OutOfRange, "{rpc:?}: {status:?}");
        assert!(!common_leak(&status));
        drop(release);
    }
    gw.stop().await;
}
