//! The connection's writer: it drains the connection's queue (filled by the hub and the
//! request worker) and the direct lane, and writes to the socket, in batches when the client
//! fell behind, each write bounded by WRITE_TIMEOUT.
use std::io::IoSlice;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pm_shared::proto::{self, Payload};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::frames;
use crate::hub::{CutOff, Outbound};
use crate::metrics::Metrics;

use super::connection::Direct;
use super::replies::event_envelope;
use super::socket::Sink;

/// Most queued items (mutations) the writer sends with one write when a client fell behind.
const WRITE_BATCH: usize = 64;
/// A socket write that takes longer than this means the client stopped reading: drop it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes `first`, or, when more is queued (the client fell behind), up to WRITE_BATCH items
/// with one vectored write: the items are the hub's shared bytes, so nothing is copied. Their
/// bytes leave the connection's budget once written, not before: what waits in a write that
/// the client does not take is still the server's memory. Counts what it wrote in `metrics`.
async fn write_batch<W: tokio::io::AsyncWrite + Unpin>(
    sink: &mut W,
    first: Outbound,
    queue: &mut mpsc::Receiver<Outbound>,
    queued_bytes: &AtomicUsize,
    metrics: &Metrics,
) -> std::io::Result<()> {
    let Ok(second) = queue.try_recv() else {
        let written = sink.write_all(first.bytes()).await;
        queued_bytes.fetch_sub(first.len(), Ordering::AcqRel);
        if written.is_ok() {
            metrics.frames_sent.increment(1);
            metrics.bytes_sent.increment(first.len() as u64);
        }
        return written;
    };
    let mut items = vec![first, second];
    while items.len() < WRITE_BATCH {
        let Ok(next) = queue.try_recv() else { break };
        items.push(next);
    }
    let written = write_vectored_all(sink, &items).await;
    let total: usize = items.iter().map(Outbound::len).sum();
    queued_bytes.fetch_sub(total, Ordering::AcqRel);
    if written.is_ok() {
        metrics.frames_sent.increment(items.len() as u64);
        metrics.bytes_sent.increment(total as u64);
    }
    written
}

async fn write_vectored_all<W: tokio::io::AsyncWrite + Unpin>(
    sink: &mut W,
    items: &[Outbound],
) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = items.iter().map(|i| IoSlice::new(i.bytes())).collect();
    let mut unwritten = &mut slices[..];
    while !unwritten.is_empty() {
        match sink.write_vectored(unwritten).await? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => IoSlice::advance_slices(&mut unwritten, n),
        }
    }
    Ok(())
}

/// A socket write with a deadline. Boxed: a timer makes a future large, and an idle
/// connection's writer should not carry one around between writes.
fn bounded<'a>(
    write: impl std::future::Future<Output = std::io::Result<()>> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send + 'a>> {
    Box::pin(bounded_write(write))
}

async fn bounded_write(
    write: impl std::future::Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "client stopped reading",
        )),
    }
}

/// Tells the client it was cut off from `stream` and must resync.
fn resync_frame(stream: &str, epoch: &str) -> Bytes {
    let resync = proto::ResyncRequired {
        stream: stream.to_string(),
        reason: "slow_consumer".into(),
        current_seq: 0,
        epoch: epoch.to_string(),
    };
    frames::message(&event_envelope(
        Payload::ResyncRequired(resync),
        stream,
        epoch,
    ))
}

pub(super) async fn write_loop(
    mut sink: Sink,
    mut queue: mpsc::Receiver<Outbound>,
    mut direct: mpsc::Receiver<Box<Direct>>,
    cut_off: Arc<CutOff>,
    queued_bytes: Arc<AtomicUsize>,
    epoch: String,
    metrics: Metrics,
) {
    let mut direct_open = true;
    // One registration with the cut-off signal for as long as it does not fire, instead of a
    // new one (two lock round trips) for every item written.
    let cut = cut_off.notify.notified();
    tokio::pin!(cut);
    loop {
        let result = tokio::select! {
            biased;
            _ = &mut cut => {
                cut.set(cut_off.notify.notified());
                // Encoded before the write, so no message is held across it.
                let resyncs: Vec<Bytes> = cut_off
                    .take()
                    .iter()
                    .map(|stream| resync_frame(stream, &epoch))
                    .collect();
                metrics.resyncs.increment(resyncs.len() as u64);
                bounded(sink.write_all(&resyncs.concat())).await
            }
            d = direct.recv(), if direct_open => match d.map(|d| *d) {
                Some(Direct::Frame(bytes)) => {
                    metrics.frames_sent.increment(1);
                    metrics.bytes_sent.increment(bytes.len() as u64);
                    bounded(sink.write_all(&bytes)).await
                }
                Some(Direct::Close(code, reason)) => {
                    let _ = bounded(sink.write_all(&frames::close(code, reason))).await;
                    break;
                }
                None => { direct_open = false; Ok(()) }
            },
            q = queue.recv() => match q {
                Some(item) => {
                    let written = bounded(write_batch(&mut sink, item, &mut queue, &queued_bytes, &metrics)).await;
                    // Room in the byte budget: the worker may be waiting for it (`Outbox`).
                    cut_off.drained.notify_one();
                    written
                }
                None => break,
            },
        };
        if result.is_err() {
            break;
        }
    }
    // A worker waiting for room finds the queue closed.
    drop(queue);
    cut_off.drained.notify_one();
    let _ = Box::pin(tokio::time::timeout(WRITE_TIMEOUT, sink.shutdown())).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A writer that fell behind sends what is queued with vectored writes; through a pipe that
    /// takes 7 bytes at a time, every item still arrives whole and in order, and the byte
    /// budget comes back to zero.
    #[tokio::test]
    async fn a_batch_arrives_whole_and_in_order_through_short_writes() {
        let (tx, mut rx) = mpsc::channel(16);
        let items: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10 + 13 * i as usize]).collect();
        let queued = AtomicUsize::new(0);
        for item in &items {
            let framed = Outbound::new(frames::binary_all(&[item]));
            queued.fetch_add(framed.len(), Ordering::AcqRel);
            tx.send(framed).await.unwrap();
        }
        let (mut sink, mut peer) = tokio::io::duplex(7);
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            peer.read_to_end(&mut all).await.unwrap();
            all
        });
        let first = rx.recv().await.unwrap();
        let metrics = Metrics::new();
        write_batch(&mut sink, first, &mut rx, &queued, &metrics)
            .await
            .unwrap();
        drop(sink);
        let got = frames::payloads(&reader.await.unwrap());
        assert_eq!(got, items);
        assert_eq!(queued.load(Ordering::Acquire), 0);
    }
}
