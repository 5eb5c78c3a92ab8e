//! Lockout after repeated failures: a pure state machine, one state per user name and
//! one per source address.
//!
//! Failures are counted in a sliding window: when `max_failures` of them fall within
//! `window`, the subject is locked for `lockout`. While locked, attempts are refused
//! before any credential is checked, and they do not extend the lock (or an attacker
//! could keep a victim locked indefinitely for free). A successful login clears the
//! user's state; a source's state only decays, so one valid account cannot launder a
//! password-spraying source.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// Thresholds and durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockoutPolicy {
    /// Failures within `window_secs` that lock the subject. 0 disables lockout.
    pub max_failures: u32,
    /// The sliding window, in seconds.
    pub window_secs: u64,
    /// How long a lockout lasts, in seconds.
    pub lockout_secs: u64,
}

impl Default for LockoutPolicy {
    /// 5 failures in 10 minutes lock for 15 minutes.
    fn default() -> Self {
        LockoutPolicy { max_failures: 5, window_secs: 600, lockout_secs: 900 }
    }
}

/// The state of one subject (a user name or a source address).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockState {
    /// Unix seconds of the failures still inside the window, oldest first.
    pub failures: Vec<i64>,
    /// Unix seconds until which the subject is locked.
    pub locked_until: Option<i64>,
}

impl LockState {
    /// When the lock ends, if locked at `now`.
    pub fn locked_until(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.locked_until
            .filter(|&until| until > now.unix_timestamp())
            .and_then(|until| OffsetDateTime::from_unix_timestamp(until).ok())
    }

    /// Records a failure at `now`; returns the lock's end if this failure locked the subject.
    pub fn fail(&mut self, now: OffsetDateTime, policy: &LockoutPolicy) -> Option<OffsetDateTime> {
        if policy.max_failures == 0 || self.locked_until(now).is_some() {
            return None;
        }
        let now_s = now.unix_timestamp();
        let window = policy.window_secs as i64;
        self.locked_until = None;
        self.failures.retain(|&t| now_s - t < window);
        self.failures.push(now_s);
        if self.failures.len() as u32 >= policy.max_failures {
            self.failures.clear();
            let until = now + Duration::seconds(policy.lockout_secs as i64);
            self.locked_until = Some(until.unix_timestamp());
            return Some(until);
        }
        None
    }

    /// Forgets everything (after a successful login, or an admin unlock).
    pub fn clear(&mut self) {
        *self = LockState::default();
    }

    /// Whether the state carries nothing worth storing at `now`.
    pub fn is_idle(&self, now: OffsetDateTime, policy: &LockoutPolicy) -> bool {
        let now_s = now.unix_timestamp();
        self.locked_until(now).is_none()
            && self.failures.iter().all(|&t| now_s - t >= policy.window_secs as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + s).unwrap()
    }

    enum Step {
        Fail(i64),
        Succeed,
    }
    use Step::*;

    /// Each row: the events, then (time, expected lock end relative to 1_700_000_000).
    #[test]
    fn state_machine_table() {
        let policy = LockoutPolicy { max_failures: 3, window_secs: 60, lockout_secs: 100 };
        let rows: &[(&str, &[Step], i64, Option<i64>)] = &[
            ("no failures", &[], 0, None),
            ("below threshold", &[Fail(0), Fail(1)], 2, None),
            ("threshold locks", &[Fail(0), Fail(1), Fail(2)], 3, Some(102)),
            ("lock expires", &[Fail(0), Fail(1), Fail(2)], 102, None),
            ("still locked just before", &[Fail(0), Fail(1), Fail(2)], 101, Some(102)),
            ("failures outside window decay", &[Fail(0), Fail(1), Fail(61)], 62, None),
            ("sliding: last 3 within 60s", &[Fail(0), Fail(30), Fail(61), Fail(62)], 63, Some(162)),
            ("success clears", &[Fail(0), Fail(1), Succeed, Fail(2)], 3, None),
            ("failures while locked do not extend", &[Fail(0), Fail(1), Fail(2), Fail(50), Fail(99)], 101, Some(102)),
            ("after expiry counting restarts", &[Fail(0), Fail(1), Fail(2), Fail(103), Fail(104)], 105, None),
            ("after expiry it can lock again", &[Fail(0), Fail(1), Fail(2), Fail(103), Fail(104), Fail(105)], 106, Some(205)),
        ];
        for (name, steps, check_at, expected) in rows {
            let mut state = LockState::default();
            for step in *steps {
                match step {
                    Fail(t) => {
                        state.fail(at(*t), &policy);
                    }
                    Succeed => state.clear(),
                }
            }
            assert_eq!(state.locked_until(at(*check_at)), expected.map(at), "row: {name}");
        }
    }

    #[test]
    fn fail_reports_the_locking_failure_only() {
        let policy = LockoutPolicy { max_failures: 2, window_secs: 60, lockout_secs: 10 };
        let mut state = LockState::default();
        assert_eq!(state.fail(at(0), &policy), None);
        assert_eq!(state.fail(at(1), &policy), Some(at(11)));
        assert_eq!(state.fail(at(2), &policy), None);
        assert!(!state.is_idle(at(5), &policy));
        assert!(state.is_idle(at(11), &policy));
    }

    #[test]
    fn zero_disables() {
        let policy = LockoutPolicy { max_failures: 0, ..LockoutPolicy::default() };
        let mut state = LockState::default();
        for t in 0..100 {
            assert_eq!(state.fail(at(t), &policy), None);
        }
        assert_eq!(state.locked_until(at(100)), None);
    }
}
