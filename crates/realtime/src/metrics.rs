//! What realtime counts, through the `metrics` facade (the server exports it at `/metrics`):
//! connections and channels open, messages in and out, slow clients dropped, and the time
//! from a change to its delivery.

use std::time::Duration;

/// A socket opened (`up`) or closed.
pub fn connection(up: bool) {
    let gauge = metrics::gauge!("realtime_connections");
    if up {
        gauge.increment(1)
    } else {
        gauge.decrement(1)
    }
}

/// Channels joined (positive) or closed (negative).
pub fn channels(delta: f64) {
    metrics::gauge!("realtime_channels").increment(delta);
}

/// A message from a client.
pub fn received() {
    metrics::counter!("realtime_messages_in_total").increment(1);
}

/// A message to a client.
pub fn sent() {
    metrics::counter!("realtime_messages_out_total").increment(1);
}

/// A client disconnected for not keeping up.
pub fn dropped_slow() {
    metrics::counter!("realtime_slow_clients_dropped_total").increment(1);
}

/// The time from a change in the database to its message being queued for a subscriber.
pub fn change_latency(latency: Duration) {
    metrics::histogram!("realtime_change_to_send_seconds").record(latency.as_secs_f64());
}
