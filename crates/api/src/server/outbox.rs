//! The sending half of a WebSocket, shared by the socket's own task and the shared executions
//! it subscribes to.
//!
//! A shared execution writes an answer to each of its subscribers' sockets itself, as a bare
//! broadcast would, instead of waking ten thousand socket tasks to write one frame each. A
//! socket that cannot take a frame at once — its client reads slowly, or its own task is
//! writing — gets it queued in order, and its own task writes the queue: no one waits for a slow
//! client but that client's own task.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::extract::ws::Message;
use futures::lock::Mutex as AsyncMutex;
use futures::{Sink, SinkExt};
use tokio::sync::Notify;

/// Bytes a socket may have queued before it refuses more (its client is not reading).
pub const MAX_QUEUED_BYTES: usize = 1024 * 1024;

/// Why a frame was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The client has more than the outbox's bound waiting.
    Full,
    /// The socket is closed or failed.
    Gone,
}

/// Where frames for one socket are posted; what shared executions hold of a subscriber.
pub trait Mailbox: Send + Sync {
    /// Takes `frame` (written now, or queued behind what is waiting). `beyond_bound` takes it
    /// even over the bound: the last words to a client that is being dropped.
    fn post(&self, frame: Message, beyond_bound: bool) -> Result<(), Refused>;

    /// Nothing more will be posted: the subscription ended (a socket's own task learns that
    /// from its protocol's frames; an HTTP stream ends its response).
    fn finished(&self) {}

    /// Resolves once some of what waits has been taken out: a writer refused `Full` that may
    /// wait (a replay, which must not outrun its client) then tries again. Asked for before
    /// the post it follows, so that a frame taken out in between is not missed.
    fn room(&self) -> Room<'_>;
}

/// What [`Mailbox::room`] gives: a wait, armed when it is made.
pub type Room<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// A wait on `taken` (notified as frames are taken out), armed now.
pub fn room_in(taken: &Notify) -> Room<'_> {
    let mut room = Box::pin(taken.notified());
    room.as_mut().enable();
    room
}

/// A socket's sending half and what waits to be written to it.
pub struct Outbox<S> {
    sink: AsyncMutex<S>,
    bound: usize,
    queue: Mutex<Queue>,
    /// Tells the socket's own task that there is something to write ([`Outbox::drain`]).
    owed: Notify,
    /// Tells writers waiting for room that frames were written ([`Mailbox::room`]).
    taken: Notify,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<Message>,
    bytes: usize,
    /// Frames wait, or the last write was left unflushed: everything goes behind them.
    pending: bool,
    closed: bool,
}

fn size(frame: &Message) -> usize {
    match frame {
        Message::Text(text) => text.len(),
        Message::Binary(bytes) => bytes.len(),
        _ => 0,
    }
}

impl<S> Outbox<S>
where
    S: Sink<Message> + Unpin + Send,
{
    pub fn new(sink: S) -> Self {
        Self::with_bound(sink, MAX_QUEUED_BYTES)
    }

    /// An outbox that queues at most `bound` bytes.
    pub fn with_bound(sink: S, bound: usize) -> Self {
        Outbox {
            sink: AsyncMutex::new(sink),
            bound,
            queue: Mutex::default(),
            owed: Notify::new(),
            taken: Notify::new(),
        }
    }

    /// Whether frames wait: a socket's task then writes them before taking more of its own.
    pub fn is_behind(&self) -> bool {
        self.lock_queue().pending
    }

    /// Resolves when [`Outbox::drain`] has work.
    pub async fn owed(&self) {
        self.owed.notified().await
    }

    /// Writes what is queued, waiting on the client as long as it takes. Only the socket's own
    /// task calls this.
    pub async fn drain(&self) -> Result<(), Refused> {
        loop {
            let mut sink = self.sink.lock().await;
            // A frame a poster left unflushed goes out first.
            if sink.flush().await.is_err() {
                return Err(self.fail());
            }
            let next = {
                let mut queue = self.lock_queue();
                match queue.frames.pop_front() {
                    Some(frame) => {
                        queue.bytes -= size(&frame);
                        self.taken.notify_waiters();
                        frame
                    }
                    None => {
                        queue.pending = false;
                        return Ok(());
                    }
                }
            };
            if sink.send(next).await.is_err() {
                return Err(self.fail());
            }
        }
    }

    /// Writes `last` after everything queued, then closes the socket; later posts are refused.
    pub async fn close(&self, last: Option<Message>) {
        if let Some(last) = last {
            let _ = self.post(last, true);
        }
        let _ = self.drain().await;
        self.lock_queue().closed = true;
        let _ = self.sink.lock().await.close().await;
    }

    fn fail(&self) -> Refused {
        let mut queue = self.lock_queue();
        queue.closed = true;
        queue.frames.clear();
        // A writer waiting for room learns on trying again that there is none to wait for.
        self.taken.notify_waiters();
        Refused::Gone
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `frame` if the socket takes it without waiting. `Err(frame)`: it did not.
    fn write_now(&self, frame: Message, queue: &mut Queue) -> Result<(), Message> {
        let Some(mut sink) = self.sink.try_lock() else {
            return Err(frame);
        };
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        match Pin::new(&mut *sink).poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => {
                queue.closed = true;
                return Ok(());
            }
            Poll::Pending => return Err(frame),
        }
        if Pin::new(&mut *sink).start_send(frame).is_err() {
            queue.closed = true;
            return Ok(());
        }
        match Pin::new(&mut *sink).poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => queue.closed = true,
            // Taken but not all written: the socket's task finishes it before anything else.
            Poll::Pending => {
                queue.pending = true;
                self.owed.notify_one();
            }
        }
        Ok(())
    }
}

impl<S> Mailbox for Outbox<S>
where
    S: Sink<Message> + Unpin + Send,
{
    fn post(&self, frame: Message, beyond_bound: bool) -> Result<(), Refused> {
        let mut queue = self.lock_queue();
        if queue.closed {
            return Err(Refused::Gone);
        }
        let frame = if queue.pending {
            frame
        } else {
            match self.write_now(frame, &mut queue) {
                Ok(()) if queue.closed => return Err(Refused::Gone),
                Ok(()) => return Ok(()),
                Err(frame) => frame,
            }
        };
        let bytes = size(&frame);
        if !beyond_bound && queue.bytes + bytes > self.bound {
            return Err(Refused::Full);
        }
        queue.frames.push_back(frame);
        queue.bytes += bytes;
        queue.pending = true;
        self.owed.notify_one();
        Ok(())
    }

    fn room(&self) -> Room<'_> {
        room_in(&self.taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;
    use futures::StreamExt;

    fn text(n: usize) -> Message {
        Message::Text(n.to_string().into())
    }

    fn number(frame: Message) -> usize {
        match frame {
            Message::Text(text) => text.parse().expect("a number"),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A client that reads nothing: frames queue in order behind the full socket, up to the
    /// bound; once it reads, the socket's task writes them all, in order.
    #[tokio::test]
    async fn frames_a_socket_cannot_take_wait_in_order_up_to_the_bound() {
        let (sink, mut client) = mpsc::channel::<Message>(4);
        let outbox = Outbox::with_bound(sink, 4_000);
        let mut posted = 0;
        while outbox.post(text(posted), false).is_ok() {
            posted += 1;
        }
        assert_eq!(outbox.post(text(posted), false), Err(Refused::Full));
        assert!(posted > 1_000, "queued up to the bound, not fewer ({posted})");
        assert_eq!(outbox.post(text(posted), true), Ok(()), "last words go beyond the bound");
        let reading = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(frame) = client.next().await {
                seen.push(number(frame));
            }
            seen
        });
        outbox.owed().await;
        outbox.drain().await.expect("drained");
        outbox.close(None).await;
        let seen = reading.await.expect("reader");
        assert_eq!(seen, (0..=posted).collect::<Vec<_>>());
        assert_eq!(outbox.post(text(0), false), Err(Refused::Gone));
    }

    /// A writer refused `Full` that waits for room is woken once the socket's task writes what
    /// was queued, even when that happens between the refusal and the wait.
    #[tokio::test]
    async fn a_wait_for_room_ends_when_queued_frames_are_written() {
        let (sink, mut client) = mpsc::channel::<Message>(1);
        let outbox = std::sync::Arc::new(Outbox::with_bound(sink, 100));
        let room = outbox.room();
        let mut posted = 0;
        while outbox.post(text(posted), false).is_ok() {
            posted += 1;
        }
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), outbox.room()).await;
        assert!(waiting.is_err(), "no room while nothing is written");
        let reading = tokio::spawn(async move {
            let mut seen = 0;
            while client.next().await.is_some() {
                seen += 1;
            }
            seen
        });
        outbox.drain().await.expect("drained");
        // Armed before the post that was refused, woken by the drain that came after it.
        tokio::time::timeout(std::time::Duration::from_secs(1), room).await.expect("room");
        assert_eq!(outbox.post(text(posted), false), Ok(()));
        outbox.close(None).await;
        assert_eq!(reading.await.expect("reader"), posted + 1);
    }

    /// While the socket's own task holds the sink, a frame is queued rather than waited for,
    /// and it still goes out after what the task was writing.
    #[tokio::test]
    async fn a_frame_posted_while_the_sink_is_busy_is_queued_not_waited_for() {
        let (sink, mut client) = mpsc::channel::<Message>(16);
        let outbox = Outbox::new(sink);
        outbox.post(text(1), false).expect("written");
        {
            let _busy = outbox.sink.lock().await;
            outbox.post(text(2), false).expect("queued");
            outbox.post(text(3), false).expect("queued behind");
        }
        assert_eq!(number(client.next().await.expect("1")), 1);
        outbox.owed().await;
        outbox.drain().await.expect("drained");
        assert_eq!(number(client.next().await.expect("2")), 2);
        assert_eq!(number(client.next().await.expect("3")), 3);
        outbox.post(text(4), false).expect("written at once again");
        assert_eq!(number(client.next().await.expect("4")), 4);
    }
}
