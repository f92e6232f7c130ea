//! Time, from one seam. Everything that waits or compares against the time (lease expiry, the
//! approval's expiry, `slow_down`, retry backoff) asks a [`Clock`], so tests drive a
//! [`ManualClock`] forward instead of sleeping.
//!
//! Times are wall-clock milliseconds since the Unix epoch ([`Millis`]) because they are stored and
//! compared across processes (a runner's heartbeat, an approval's expiry).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    pub fn plus(self, duration: Duration) -> Self {
        Self(self.0.saturating_add(duration.as_millis().min(i64::MAX as u128) as i64))
    }

    pub fn minus(self, duration: Duration) -> Self {
        Self(self.0.saturating_sub(duration.as_millis().min(i64::MAX as u128) as i64))
    }

    /// How long from `self` until `later`; zero if `later` is not later.
    pub fn until(self, later: Millis) -> Duration {
        Duration::from_millis(later.0.saturating_sub(self.0).max(0) as u64)
    }

    /// RFC 3339, UTC, to the second.
    pub fn rfc3339(self) -> String {
        let at = UNIX_EPOCH + Duration::from_millis(self.0.max(0) as u64);
        humantime::format_rfc3339_seconds(at).to_string()
    }
}

type SleepFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

trait TimeSource: Send + Sync {
    fn now(&self) -> Millis;
    fn sleep_until(&self, at: Millis) -> SleepFuture<'_>;
}

/// The time: the system's, or a [`ManualClock`]'s in tests. Cheap to clone.
#[derive(Clone)]
pub struct Clock(Arc<dyn TimeSource>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock(now = {})", self.now().0)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(SystemTime_))
    }

    /// A clock that stands still at `start` until its [`ManualClock`] moves it.
    pub fn manual(start: Millis) -> (Self, ManualClock) {
        let (sender, _) = watch::channel(start);
        let manual = ManualClock { now: Arc::new(sender) };
        (Self(Arc::new(manual.clone())), manual)
    }

    pub fn now(&self) -> Millis {
        self.0.now()
    }

    pub async fn sleep_until(&self, at: Millis) {
        self.0.sleep_until(at).await
    }

    pub async fn sleep(&self, duration: Duration) {
        let at = self.now().plus(duration);
        self.0.sleep_until(at).await
    }
}

struct SystemTime_;

impl TimeSource for SystemTime_ {
    fn now(&self) -> Millis {
        Millis(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64))
    }

    fn sleep_until(&self, at: Millis) -> SleepFuture<'_> {
        Box::pin(async move {
            // Re-check after waking: the wall clock may have been adjusted meanwhile.
            loop {
                let left = self.now().until(at);
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left).await;
            }
        })
    }
}

/// Moves a manual [`Clock`] forward; every sleeper whose time has come wakes.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<Millis>>,
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|now| *now = now.plus(by));
    }

    /// How many sleeps on this clock are waiting right now; a test moves the clock once the code
    /// it drives has gone to sleep, so no time passes while that code is busy.
    pub fn sleepers(&self) -> usize {
        self.now.receiver_count()
    }
}

impl TimeSource for ManualClock {
    fn now(&self) -> Millis {
        *self.now.borrow()
    }

    fn sleep_until(&self, at: Millis) -> SleepFuture<'_> {
        let mut changes = self.now.subscribe();
        Box::pin(async move {
            while *changes.borrow_and_update() < at {
                if changes.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        })
    }
}

/// A time left as a person reads it at a glance, in the largest units that matter: `4:40` under an
/// hour, `2 h 05 min` under a day, `2 d 03 h` beyond (approvals may last up to three days). Always
/// rounded down, so it never promises more time than there is. The approval page's countdown
/// (`devstack::authz::page`) writes the same in its script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLeft(pub Duration);

impl std::fmt::Display for TimeLeft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MINUTE: u64 = 60;
        const HOUR: u64 = 60 * MINUTE;
        const DAY: u64 = 24 * HOUR;
        let seconds = self.0.as_secs();
        match seconds {
            s if s < HOUR => write!(f, "{}:{:02}", s / MINUTE, s % MINUTE),
            s if s < DAY => write!(f, "{} h {:02} min", s / HOUR, s % HOUR / MINUTE),
            s => write!(f, "{} d {:02} h", s / DAY, s % DAY / HOUR),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_only_when_moved_past_their_time() {
        let (clock, hand) = Clock::manual(Millis(1_000));
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(Millis(6_000)).await }
        });
        hand.advance(Duration::from_secs(4));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        hand.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(1), sleeper).await.unwrap().unwrap();
        assert_eq!(clock.now(), Millis(6_000));
    }

    #[test]
    fn durations_between_times_never_go_negative() {
        assert_eq!(Millis(5_000).until(Millis(7_500)), Duration::from_millis(2_500));
        assert_eq!(Millis(5_000).until(Millis(1_000)), Duration::ZERO);
        assert_eq!(Millis(0).rfc3339(), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn time_left_reads_in_minutes_then_hours_then_days() {
        let left = |seconds| TimeLeft(Duration::from_secs(seconds)).to_string();
        assert_eq!(left(0), "0:00");
        assert_eq!(left(59), "0:59");
        assert_eq!(left(280), "4:40");
        assert_eq!(left(3_599), "59:59");
        assert_eq!(left(3_600), "1 h 00 min");
        assert_eq!(left(7_500), "2 h 05 min", "125 minutes");
        assert_eq!(left(86_399), "23 h 59 min");
        assert_eq!(left(86_400), "1 d 00 h");
        assert_eq!(left(2 * 86_400 + 3 * 3_600 + 59 * 60), "2 d 03 h", "rounded down, never up");
        assert_eq!(left(259_200), "3 d 00 h", "the longest approval");
        assert_eq!(TimeLeft(Duration::from_millis(59_999)).to_string(), "0:59");
    }
}
