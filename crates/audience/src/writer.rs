//! The single writer, on a thread of its own: it takes whatever is queued, stages it against
//! the live state, commits the records in one transaction of the store, and only then applies
//! the changes and answers every heartbeat of the batch (group commit). The thread sleeps only
//! when the queue is empty, so under load one wake-up serves a whole batch.
//!
//! A batch whose commit fails is retried one job at a time, so that a record the store
//! refuses fails only its own heartbeat; every field is validated before it gets here, so that
//! is a last line of defence. Nothing of a failed job reaches the live state.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::state::{Beat, Change, Sampled};
use crate::{AudienceStore, Catchup, Clock, Config, Error, Outcome, Result, State};

/// Work for the writer.
#[derive(Debug)]
pub(crate) enum Job {
    Beat(Beat, oneshot::Sender<Result<Outcome>>),
    /// Sample concurrency for the peaks and minutes, then forget what is old.
    Sample(oneshot::Sender<Result<()>>),
}

/// Jobs taken from the queue at most at once.
const MAX_BATCH: usize = 2_000;

pub(crate) fn start(
    store: Arc<dyn AudienceStore>,
    state: Arc<Mutex<State>>,
    config: Arc<Config>,
    clock: Clock,
    skew: Arc<AtomicI64>,
    mut queue: mpsc::Receiver<Job>,
) -> Result<()> {
    std::thread::Builder::new()
        .name("audience-writer".into())
        .spawn(move || {
            let writer = Writer {
                store,
                state,
                config,
                clock,
                skew,
            };
            // A shared store: at most one commit every `shared_commit_every_ms`.
            let every = if writer.store.is_shared() {
                Duration::from_millis(writer.config.shared_commit_every_ms)
            } else {
                Duration::ZERO
            };
            let mut last_commit: Option<Instant> = None;
            while let Some(first) = queue.blocking_recv() {
                if let Some(wait) = last_commit.and_then(|at| every.checked_sub(at.elapsed())) {
                    std::thread::sleep(wait);
                }
                last_commit = Some(Instant::now());
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                writer.run(batch);
            }
        })
        .map_err(|e| Error::Store(format!("starting the audience writer: {e}")))?;
    Ok(())
}

struct Writer {
    store: Arc<dyn AudienceStore>,
    state: Arc<Mutex<State>>,
    config: Arc<Config>,
    clock: Clock,
    /// The store's clock minus ours, as last seen (0 for a store of this process alone).
    skew: Arc<AtomicI64>,
}

impl Writer {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::lock(&self.state)
    }

    fn run(&self, batch: Vec<Job>) {
        let mut beats = Vec::new();
        let mut waiting = Vec::new();
        for job in batch {
            match job {
                Job::Beat(beat, done) => {
                    beats.push(beat);
                    waiting.push(done);
                }
                Job::Sample(done) => {
                    let _ = done.send(self.sample());
                }
            }
        }
        if beats.is_empty() {
            return;
        }
        if let Err(failed) = self.beats(&beats, waiting) {
            // One transaction per heartbeat: a record the store refuses takes down only its
            // own heartbeat.
            for (beat, done) in beats.into_iter().zip(failed) {
                let _ = self.beats(std::slice::from_ref(&beat), vec![done]);
            }
        }
    }

    /// Stages, stores and applies `beats`, answering each through `waiting`; on a failed
    /// commit, changes nothing and hands the answers back (unless it was a single beat, which
    /// is answered with the error).
    fn beats(
        &self,
        beats: &[Beat],
        waiting: Vec<oneshot::Sender<Result<Outcome>>>,
    ) -> std::result::Result<(), Vec<oneshot::Sender<Result<Outcome>>>> {
        let local_now = self.clock.now_ms();
        let mut staged: Option<(Vec<Result<Outcome>>, Vec<Change>)> = None;
        let written = self.store.exchange(local_now, &mut |catchup| {
            let mut state = self.lock();
            let now = take_in(&mut state, &self.skew, catchup, local_now);
            let (outcomes, changes, records) = state.stage(&self.config, beats, now);
            staged = Some((outcomes, changes));
            records
        });
        let staged = staged.ok_or_else(|| Error::Store("the store never staged the batch".into()));
        match written.and(staged) {
            Ok((outcomes, changes)) => {
                self.lock().commit(changes);
                for (done, outcome) in waiting.into_iter().zip(outcomes) {
                    let _ = done.send(outcome);
                }
                Ok(())
            }
            Err(e) if beats.len() == 1 => {
                tracing::warn!(error = %e, "a heartbeat could not be stored");
                for done in waiting {
                    let _ = done.send(Err(Error::Store(e.to_string())));
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, beats = beats.len(), "a batch could not be stored; retrying its heartbeats one by one");
                Err(waiting)
            }
        }
    }

    fn sample(&self) -> Result<()> {
        let local_now = self.clock.now_ms();
        let mut staged: Option<Sampled> = None;
        self.store.exchange(local_now, &mut |catchup| {
            let mut state = self.lock();
            let now = take_in(&mut state, &self.skew, catchup, local_now);
            let (sampled, records) = state.sample(&self.config, now);
            staged = Some(sampled);
            records
        })?;
        let sampled =
            staged.ok_or_else(|| Error::Store("the store never staged the sample".into()))?;
        self.lock()
            .commit_sample(&self.config, sampled, crate::keep_ms(&self.config));
        Ok(())
    }
}

/// Takes `catchup` into `state` and remembers the store's clock; returns the store's time.
fn take_in(state: &mut State, skew: &AtomicI64, catchup: Catchup, local_now: i64) -> i64 {
    let now = catchup.now_ms;
    skew.store(now - local_now, Ordering::Relaxed);
    state.catch_up(catchup);
    now
}

/// Catches up with the other nodes of a shared store, writing nothing ([`crate::Audience::sync`]).
pub(crate) fn catch_up(
    store: &dyn AudienceStore,
    state: &Mutex<State>,
    skew: &AtomicI64,
    local_now: i64,
) -> Result<()> {
    store.exchange(local_now, &mut |catchup| {
        take_in(&mut crate::lock(state), skew, catchup, local_now);
        Vec::new()
    })
}
