//! Running CPU-heavy work on tokio's blocking pool with the caller's tracing span.

use tokio::task::JoinError;

/// Runs `f` on the blocking pool, inside the span that was current when it was called, so its
/// log lines keep the request's context (zero-to-production's `spawn_blocking_with_tracing`).
pub(crate) async fn spawn_blocking_with_tracing<F, R>(f: F) -> Result<R, JoinError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f)).await
}
