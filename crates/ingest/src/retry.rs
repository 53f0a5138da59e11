//! The shared retry loop: transient faults (rate limits, 5xx, connection errors, unreadable
//! answers) are retried with exponential backoff and jitter, honouring a server's `Retry-After`
//! when the client exposes it; other faults fail at once.

use std::future::Future;
use std::time::Duration;

use crate::Progress;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max_delay: Duration,
    pub max_attempts: u32,
}

/// A failed attempt, classified.
#[derive(Debug, Clone)]
pub enum Fault {
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    Permanent(String),
    /// A spent rate limit: wait this long and try again. Waiting for a limit to reset is not a
    /// failed attempt, so it does not count against `max_attempts` (but at most
    /// `MAX_RATE_LIMIT_WAITS` times in a row).
    RateLimited {
        message: String,
        wait: Duration,
    },
}

/// How often in a row a request may wait for a rate limit before it fails.
pub const MAX_RATE_LIMIT_WAITS: u32 = 10;

impl RetryPolicy {
    /// The delay before retry `attempt` (1-based): `base * 2^(attempt-1)`, capped, with up to
    /// 25% jitter so that many clients do not retry in step.
    pub fn delay(&self, attempt: u32, seed: u64) -> Duration {
        let exp = self.base.saturating_mul(1u32 << (attempt - 1).min(16));
        let capped = exp.min(self.max_delay);
        let jitter = (splitmix(seed ^ u64::from(attempt)) % 1000) as f64 / 4000.0;
        capped.mul_f64(1.0 + jitter)
    }

    /// Runs `attempt` until it succeeds, fails permanently, or runs out of attempts.
    pub async fn run<T, F, Fut>(
        &self,
        resource: &str,
        progress: &dyn Progress,
        mut attempt: F,
    ) -> Result<T, String>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Fault>>,
    {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(7);
        let mut tries = 0;
        let mut waits = 0;
        loop {
            tries += 1;
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(Fault::Permanent(message)) => return Err(message),
                Err(Fault::RateLimited { message, .. }) if waits >= MAX_RATE_LIMIT_WAITS => {
                    return Err(format!("{message} (gave up after {waits} waits)"));
                }
                Err(Fault::RateLimited { message, wait }) => {
                    waits += 1;
                    tries -= 1;
                    progress.waiting(resource, &message, wait.as_secs_f64());
                    tokio::time::sleep(wait).await;
                }
                Err(Fault::Transient { message, .. }) if tries >= self.max_attempts => {
                    return Err(format!("{message} (gave up after {tries} attempts)"));
                }
                Err(Fault::Transient {
                    message,
                    retry_after,
                }) => {
                    let delay = retry_after.unwrap_or_else(|| self.delay(tries, seed));
                    progress.waiting(resource, &message, delay.as_secs_f64());
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_are_capped_and_jittered_by_at_most_a_quarter() {
        let p = RetryPolicy {
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_attempts: 5,
        };
        for seed in 0..50 {
            let d1 = p.delay(1, seed).as_secs_f64();
            let d3 = p.delay(3, seed).as_secs_f64();
            let d9 = p.delay(9, seed).as_secs_f64();
            assert!((0.1..=0.125).contains(&d1), "{d1}");
            assert!((0.4..=0.5).contains(&d3), "{d3}");
            assert!((1.0..=1.25).contains(&d9), "{d9}");
        }
    }

    #[tokio::test]
    async fn transient_faults_are_retried_and_permanent_ones_are_not() {
        let p = RetryPolicy {
            base: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_attempts: 3,
        };
        let progress = crate::LogProgress;
        let mut calls = 0;
        let ok: Result<u32, String> = p
            .run("r", &progress, || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(Fault::Transient {
                            message: "503".into(),
                            retry_after: None,
                        })
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(ok, Ok(3));
        let mut calls = 0;
        let failed: Result<u32, String> = p
            .run("r", &progress, || {
                calls += 1;
                async { Err(Fault::Permanent("401".into())) }
            })
            .await;
        assert_eq!((failed, calls), (Err("401".to_string()), 1));
        let exhausted: Result<u32, String> = p
            .run("r", &progress, || async {
                Err(Fault::Transient {
                    message: "503".into(),
                    retry_after: None,
                })
            })
            .await;
        assert_eq!(exhausted, Err("503 (gave up after 3 attempts)".to_string()));
    }
}
