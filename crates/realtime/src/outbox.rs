//! A socket's outgoing buffer, bounded in bytes: a client too slow to take its messages is
//! disconnected rather than buffered without bound.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::extract::ws::Message as Ws;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use crate::{
    frame::{Message, Vsn},
    metrics,
};

/// Bytes a socket may have queued (each message counted at least [`MIN_CHARGE`]).
pub const BUDGET: usize = 4 << 20;
/// What a message costs at least (its bookkeeping).
const MIN_CHARGE: usize = 256;

/// Why a socket stops.
#[derive(Debug)]
pub enum Stop {
    /// The client closed it, or it broke.
    Gone,
    /// The client does not keep up.
    Slow,
}

/// A queued frame and the share of the budget it holds until written.
pub type Queued = (Ws, OwnedSemaphorePermit);

/// The sending half of a socket, shared with whatever delivers to it.
#[derive(Clone)]
pub struct Outbox {
    vsn: Vsn,
    tx: mpsc::UnboundedSender<Queued>,
    budget: Arc<Semaphore>,
    slow: Arc<Notify>,
    /// Set once the client was found too slow: later sends fail at once.
    dead: Arc<AtomicBool>,
}

impl Outbox {
    /// An outbox writing in `vsn`'s serializer; the writer drains the receiver, and `slow` is
    /// told when the client falls [`BUDGET`] bytes behind.
    pub fn new(vsn: Vsn, slow: Arc<Notify>) -> (Self, mpsc::UnboundedReceiver<Queued>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let outbox = Self {
            vsn,
            tx,
            budget: Arc::new(Semaphore::new(BUDGET)),
            slow,
            dead: Arc::default(),
        };
        (outbox, rx)
    }

    fn frame(&self, message: &Message) -> (Ws, u32) {
        let binary = match self.vsn {
            Vsn::V2 => message.to_binary(),
            Vsn::V1 => None,
        };
        let (frame, len) = match binary {
            Some(bytes) => {
                let len = bytes.len();
                (Ws::Binary(bytes.into()), len)
            }
            None => {
                let text = message.to_text(self.vsn);
                let len = text.len();
                (Ws::Text(text.into()), len)
            }
        };
        let charge = len.clamp(MIN_CHARGE, BUDGET);
        (frame, u32::try_from(charge).unwrap_or(u32::MAX))
    }

    fn queue(&self, frame: Ws, permit: OwnedSemaphorePermit) -> Result<(), Stop> {
        self.tx.send((frame, permit)).map_err(|_| Stop::Gone)?;
        metrics::sent();
        Ok(())
    }

    /// Queues a message without waiting; a full budget marks the client slow (it is then
    /// disconnected, and nobody else waits for it).
    pub fn send(&self, message: &Message) -> Result<(), Stop> {
        if self.dead.load(Ordering::Relaxed) {
            return Err(Stop::Slow);
        }
        let (frame, charge) = self.frame(message);
        match self.budget.clone().try_acquire_many_owned(charge) {
            Ok(permit) => self.queue(frame, permit),
            Err(_) => Err(self.give_up()),
        }
    }

    fn give_up(&self) -> Stop {
        self.dead.store(true, Ordering::Relaxed);
        self.slow.notify_one();
        Stop::Slow
    }
}
