//! Groups packets sent within a short burst and yields the delay change between successive
//! groups (libwebrtc's `InterArrivalDelta`): how much later a group arrived than it was sent,
//! relative to the group before it. A positive change means a queue is building.

use std::time::{Duration, Instant};

/// Packets sent within this span of a group's first packet belong to that group.
const BURST_SPAN: Duration = Duration::from_millis(5);
/// An arrival gap longer than this (or arrivals going backwards) means the path changed or
/// feedback was missing for a while: start over rather than compare across it.
const RESET_GAP: Duration = Duration::from_secs(3);

/// `a - b` in milliseconds, negative when `a` is earlier; never panics.
pub(crate) fn signed_ms(a: Instant, b: Instant) -> f64 {
    if a >= b {
        a.duration_since(b).as_secs_f64() * 1000.0
    } else {
        -(b.duration_since(a).as_secs_f64() * 1000.0)
    }
}

#[derive(Debug, Clone, Copy)]
struct Group {
    first_send: Instant,
    last_send: Instant,
    last_arrival: Instant,
}

/// The change between two completed groups, handed to the trendline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupDelta {
    /// Send time of this group minus send time of the previous one, ms.
    pub send_ms: f64,
    /// Arrival time of this group minus arrival time of the previous one, ms.
    pub arrival_ms: f64,
    /// When this group's last packet arrived.
    pub arrival: Instant,
}

/// Burst grouping state.
#[derive(Debug, Default)]
pub(crate) struct InterArrival {
    current: Option<Group>,
    previous: Option<Group>,
}

impl InterArrival {
    /// Feeds one received packet (in sequence order); returns a delta when a group completes.
    pub fn on_packet(&mut self, send: Instant, arrival: Instant) -> Option<GroupDelta> {
        let Some(cur) = self.current.as_mut() else {
            self.current = Some(Group {
                first_send: send,
                last_send: send,
                last_arrival: arrival,
            });
            return None;
        };
        if send < cur.first_send {
            // Sent before the current group started: a reordered report, says nothing new.
            return None;
        }
        if send.duration_since(cur.first_send) <= BURST_SPAN {
            cur.last_send = cur.last_send.max(send);
            cur.last_arrival = cur.last_arrival.max(arrival);
            return None;
        }
        let done = *cur;
        self.current = Some(Group {
            first_send: send,
            last_send: send,
            last_arrival: arrival,
        });
        let prev = self.previous.replace(done)?;
        let arrival_ms = signed_ms(done.last_arrival, prev.last_arrival);
        if arrival_ms < 0.0 || arrival_ms > RESET_GAP.as_secs_f64() * 1000.0 {
            self.previous = None;
            return None;
        }
        Some(GroupDelta {
            send_ms: signed_ms(done.last_send, prev.last_send),
            arrival_ms,
            arrival: done.last_arrival,
        })
    }
}
