//! CPU-heavy work of a call kept off the async runtime: opening (HPKE) and decoding a large sealed
//! payload runs on tokio's blocking pool, so that a 200 KB–17 MiB open does not stall the two
//! worker threads that every other call (and every connection's TLS and HTTP/2) needs.
//!
//! Small payloads (a SHORT_VIDEO name + ID number, a few hundred bytes) are opened inline: handing
//! them to another thread would cost more than the open. The blocking pool needs no bound of its own:
//! the calls that open payloads (`Verify`, `SubmitSupplement`) are each bounded by load shedding
//! ([`super::shedding`]).
//!
//! The caller's deadline still holds: past it the call is answered `DEADLINE_EXCEEDED` at once. The
//! blocking work cannot be cancelled; it finishes on its own thread and its result (a plaintext, wiped
//! on drop) is dropped unread. Must never hand plaintext anywhere but back to its caller.

use tokio::time::Instant;
use tonic::Status;

use super::errors;
use super::reasons::ErrorReason;

/// Sealed payloads at least this large are opened on the blocking pool. An ANCHOR face is far above
/// it; a SHORT_VIDEO payload far below (`benches/hot_path.rs` measures both opens).
pub const OFFLOAD_AT_BYTES: usize = 32 * 1024;

/// Runs `work` (about `size` bytes of crypto) inline when small, otherwise on the blocking pool,
/// answering `DEADLINE_EXCEEDED` if `deadline` passes first. Without a deadline the server-wide call
/// timeout bounds the call.
pub async fn run<T: Send + 'static>(
    size: usize,
    deadline: Option<Instant>,
    work: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    if size < OFFLOAD_AT_BYTES {
        return work();
    }
    let task = tokio::task::spawn_blocking(work);
    let joined = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, task)
            .await
            .map_err(|_| errors::deadline_exceeded())?,
        None => task.await,
    };
    // A panic in the work (a bug, never input-driven) is an internal error, not a lost call.
    joined
        .map_err(|_| errors::status_with_reason(tonic::Code::Internal, "internal error", ErrorReason::Internal, &[]))?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn small_work_runs_inline_and_large_work_on_another_thread() {
        let here = std::thread::current().id();
        let small = run(OFFLOAD_AT_BYTES - 1, None, move || Ok(std::thread::current().id()))
            .await
            .unwrap();
        assert_eq!(small, here);
        let large = run(OFFLOAD_AT_BYTES, None, move || Ok(std::thread::current().id()))
            .await
            .unwrap();
        assert_ne!(large, here);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_error_of_the_work_is_the_answer() {
        let refused: Result<(), Status> = run(OFFLOAD_AT_BYTES, None, || Err(errors::unopenable_payload())).await;
        assert_eq!(refused.unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn work_still_running_at_the_deadline_is_answered_deadline_exceeded() {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (finished_tx, finished) = tokio::sync::oneshot::channel();
        // A deadline that has already passed: the work is still held, so the answer is the deadline's.
        let deadline = Instant::now();
        let answer = run(OFFLOAD_AT_BYTES, Some(deadline), move || {
            // Held until the test lets go, after the call has been answered.
            let _ = held.recv();
            let _ = finished_tx.send(());
            Ok(())
        })
        .await;
        let status = answer.unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        // The work was not lost half-way: it finishes once released.
        release.send(()).unwrap();
        finished.await.unwrap();
    }
}
