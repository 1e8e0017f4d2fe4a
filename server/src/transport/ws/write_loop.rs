//! The connection's writer: it drains the connection's queue (filled by the hub and the
//! request worker) and the direct lane, and writes to the socket, in batches when the client
//! fell behind, each write bounded by WRITE_TIMEOUT.
use std::io::IoSlice;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pm_shared::proto::{self, Payload};
use tokio::sync::mpsc;

use crate::frames;
use crate::hub::socket::{ClientSocket, Turn};
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
/// the client does not take is still the server's memory (and, while it is counted, the hub
/// does not write to the socket itself). Counts what it wrote in `metrics`.
async fn write_batch(
    turn: &Turn<'_>,
    first: Outbound,
    queue: &mut mpsc::Receiver<Outbound>,
    queued_bytes: &AtomicUsize,
    metrics: &Metrics,
) -> std::io::Result<()> {
    let Ok(second) = queue.try_recv() else {
        let written = turn.write_all(first.bytes()).await;
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
    let mut slices: Vec<IoSlice<'_>> = items.iter().map(|i| IoSlice::new(i.bytes())).collect();
    let written = turn.write_vectored_all(&mut slices).await;
    let total: usize = items.iter().map(Outbound::len).sum();
    queued_bytes.fetch_sub(total, Ordering::AcqRel);
    if written.is_ok() {
        metrics.frames_sent.increment(items.len() as u64);
        metrics.bytes_sent.increment(total as u64);
    }
    written
}

/// Takes the socket's turn, and first writes the end of a frame the hub began, if one waits:
/// those bytes go before anything else.
async fn turn_after_rest<'a>(
    sink: &'a ClientSocket,
    queued_bytes: &AtomicUsize,
) -> std::io::Result<Turn<'a>> {
    let turn = sink.turn().await;
    if let Some(rest) = turn.take_rest() {
        let written = turn.write_all(&rest).await;
        queued_bytes.fetch_sub(rest.len(), Ordering::AcqRel);
        written?;
    }
    Ok(turn)
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
    sink: Sink,
    mut queue: mpsc::Receiver<Outbound>,
    mut direct: mpsc::Receiver<Box<Direct>>,
    cut_off: Arc<CutOff>,
    queued_bytes: Arc<AtomicUsize>,
    epoch: String,
    metrics: Metrics,
) {
    let mut direct_open = true;
    let queued = &*queued_bytes;
    // One registration with the signal for as long as it does not fire, instead of a new one
    // (two lock round trips) for every item written.
    let cut = cut_off.notify.notified();
    tokio::pin!(cut);
    loop {
        let result = tokio::select! {
            biased;
            // Streams this connection was cut off from, or the rest of a frame the hub began.
            _ = &mut cut => {
                cut.set(cut_off.notify.notified());
                // Encoded before the write, so no message is held across it.
                let resyncs: Vec<Bytes> = cut_off
                    .take()
                    .iter()
                    .map(|stream| resync_frame(stream, &epoch))
                    .collect();
                metrics.resyncs.increment(resyncs.len() as u64);
                bounded(async {
                    turn_after_rest(&sink, queued).await?.write_all(&resyncs.concat()).await
                })
                .await
            }
            d = direct.recv(), if direct_open => match d.map(|d| *d) {
                Some(Direct::Frame(bytes)) => {
                    metrics.frames_sent.increment(1);
                    metrics.bytes_sent.increment(bytes.len() as u64);
                    bounded(async { turn_after_rest(&sink, queued).await?.write_all(&bytes).await })
                        .await
                }
                Some(Direct::Close(code, reason)) => {
                    let close = frames::close(code, reason);
                    let _ = bounded(async {
                        turn_after_rest(&sink, queued).await?.write_all(&close).await
                    })
                    .await;
                    break;
                }
                None => { direct_open = false; Ok(()) }
            },
            q = queue.recv() => match q {
                Some(item) => {
                    let written = bounded(async {
                        let turn = turn_after_rest(&sink, queued).await?;
                        write_batch(&turn, item, &mut queue, queued, &metrics).await
                    })
                    .await;
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
    // Nothing more is written: not by this task, and not by the hub after this task's last
    // frame.
    sink.turn().await.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A connected loopback pair: (the server's side, the client's side).
    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    /// A writer that fell behind sends what is queued with vectored writes; through a socket
    /// whose reader starts late (so writes stop short and wait for room), every item still
    /// arrives whole and in order, and the byte budget comes back to zero.
    #[tokio::test]
    async fn a_batch_arrives_whole_and_in_order_through_short_writes() {
        let (server, mut peer) = tcp_pair().await;
        let socket = ClientSocket::new(server.into_split().1);
        let (tx, mut rx) = mpsc::channel(16);
        let items: Vec<Vec<u8>> = (0..5u8)
            .map(|i| vec![i; 1_500_000 + 13 * i as usize])
            .collect();
        let queued = AtomicUsize::new(0);
        for item in &items {
            let framed = Outbound::new(frames::binary_all(&[item]));
            queued.fetch_add(framed.len(), Ordering::AcqRel);
            tx.send(framed).await.unwrap();
        }
        let reader = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut all = Vec::new();
            peer.read_to_end(&mut all).await.unwrap();
            all
        });
        let first = rx.recv().await.unwrap();
        let metrics = Metrics::new();
        let turn = socket.turn().await;
        write_batch(&turn, first, &mut rx, &queued, &metrics)
            .await
            .unwrap();
        turn.close();
        let got = frames::payloads(&reader.await.unwrap());
        assert_eq!(got, items);
        assert_eq!(queued.load(Ordering::Acquire), 0);
    }

    /// The hub writes what the socket takes of an event itself and leaves the rest to the
    /// connection's writer task, which it must wake: here nothing else ever comes for the
    /// connection, so only that wake gets the rest of the frame out.
    #[tokio::test]
    async fn the_rest_of_a_frame_the_hub_began_goes_out_with_nothing_else_to_come() {
        use crate::hub::{EventHub, Subscriber};
        let (server, mut peer) = tcp_pair().await;
        let socket = Arc::new(ClientSocket::new(server.into_split().1));
        let (queue_tx, queue_rx) = mpsc::channel(16);
        let (_direct_tx, direct_rx) = mpsc::channel(16);
        let cut_off = Arc::new(CutOff::default());
        let queued = Arc::new(AtomicUsize::new(0));
        let hub = EventHub::default();
        let id = hub.register(Subscriber {
            user_id: "u".into(),
            queue: queue_tx,
            queued_bytes: queued.clone(),
            max_bytes: 64 << 20,
            cut_off: cut_off.clone(),
            socket: Some(socket.clone()),
        });
        assert!(hub.subscribe(id, "s", Vec::new()));
        tokio::spawn(write_loop(
            socket,
            queue_rx,
            direct_rx,
            cut_off,
            queued.clone(),
            String::new(),
            Metrics::new(),
        ));
        // More than any socket buffer here takes at once (4 MiB at most).
        let payload = vec![7u8; 8 << 20];
        hub.publish("s", None, &[Bytes::from(payload.clone())], 1);
        assert!(
            queued.load(Ordering::Acquire) > 0,
            "the socket cannot have taken 8 MiB at once"
        );
        let whole = frames::binary_all(&[&payload]).len();
        let mut all = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), async {
            let mut buf = vec![0; 1 << 16];
            while all.len() < whole {
                let n = peer.read(&mut buf).await.unwrap();
                assert!(n > 0, "the socket closed");
                all.extend_from_slice(&buf[..n]);
            }
        })
        .await
        .expect("the rest of the frame arrives");
        assert_eq!(frames::payloads(&all), vec![payload]);
        assert_eq!(queued.load(Ordering::Acquire), 0);
    }

    /// Nothing to write (the cut-off signal woke the writer for a frame's rest, with no streams
    /// to report) is no write at all, not a write of zero bytes that ends the connection.
    #[tokio::test]
    async fn writing_nothing_is_not_an_error() {
        let (server, _peer) = tcp_pair().await;
        let socket = ClientSocket::new(server.into_split().1);
        let turn = socket.turn().await;
        turn.write_all(&[]).await.expect("an empty write");
        let mut none = [IoSlice::new(&[]), IoSlice::new(&[])];
        turn.write_vectored_all(&mut none)
            .await
            .expect("empty slices");
    }
}
