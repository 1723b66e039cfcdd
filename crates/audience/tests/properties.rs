//! Properties of the audience rules over any sequence of heartbeats a client could send,
//! hostile or not (`docs/SECURITY.md`): no sequence makes a view without the playing time a
//! view needs having passed on the server's clock, makes playing time outrun wall-clock time,
//! or drives any figure out of its range.

#![allow(clippy::unwrap_used)]

use monsoon_audience::heartbeat::limits;
use monsoon_audience::{Beat, Config, Counters, Outcome, PlayerState, Record, State};
use proptest::prelude::*;

/// One heartbeat of a script: which of a few sessions, how long after the previous beat, and
/// whatever counters it likes (within the bounds validation lets through).
#[derive(Debug, Clone)]
struct Step {
    session: usize,
    after_ms: i64,
    seq_step: u64,
    state: PlayerState,
    play_ms: u64,
    rebuffer_ms: u64,
    startup_ms: u64,
    height: u32,
    viewer: usize,
}

fn state() -> impl Strategy<Value = PlayerState> {
    prop::sample::select(PlayerState::ALL.to_vec())
}

fn step() -> impl Strategy<Value = Step> {
    (
        0usize..4,
        0i64..40_000,
        0u64..3,
        state(),
        prop_oneof![0u64..120_000, 0..=limits::TIME_MS],
        prop_oneof![0u64..10_000, 0..=limits::TIME_MS],
        0..=limits::STARTUP_MS,
        0..=limits::HEIGHT,
        0usize..2,
    )
        .prop_map(
            |(
                session,
                after_ms,
                seq_step,
                state,
                play_ms,
                rebuffer_ms,
                startup_ms,
                height,
                viewer,
            )| {
                Step {
                    session,
                    after_ms,
                    seq_step,
                    state,
                    play_ms,
                    rebuffer_ms,
                    startup_ms,
                    height,
                    viewer,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn no_sequence_of_beats_outruns_the_clock_or_overflows_a_figure(
        steps in prop::collection::vec(step(), 1..60)
    ) {
        let config = Config::default();
        let mut state = State::default();
        let t0: i64 = 1_800_000_000_000;
        let mut now = t0;
        let mut seqs = [0u64; 4];
        // Each session is minted at t0; its viewer is fixed by its first beat.
        let mut viewers: [Option<usize>; 4] = [None; 4];
        let mut views = Vec::new();
        let mut accepted = [0u32; 4];
        for s in &steps {
            now += s.after_ms;
            seqs[s.session] += s.seq_step;
            let viewer = *viewers[s.session].get_or_insert(s.viewer);
            let beat = Beat {
                session: format!("session-{}", s.session),
                film: "film".into(),
                viewer: format!("viewer-{viewer}"),
                started_at: t0,
                seq: seqs[s.session],
                state: s.state,
                counters: Counters {
                    play_ms: s.play_ms,
                    rebuffer_ms: s.rebuffer_ms,
                    startup_ms: s.startup_ms,
                    height: s.height,
                    ..Counters::default()
                },
                proven: true,
            };
            let (outcome, records) = state.beat(&config, &beat, now);
            if let Ok(Outcome::Accepted) = outcome {
                accepted[s.session] += 1;
                // Accepted playing time never outruns the session's wall-clock time.
                let allowed = ((now - t0) as f64 * config.rate_slack) as u64 + config.rate_grace_ms;
                prop_assert!(s.play_ms <= allowed);
            }
            for record in records {
                if let Record::View(v) = record {
                    // Never one beat's claim: an earlier accepted beat of the session, and
                    // the threshold's playing time accrued since the first.
                    prop_assert!(accepted[s.session] >= 2, "a view from the session's first beat");
                    let session = state.session(&v.session).unwrap();
                    prop_assert!(
                        session.beat.play_ms - session.first_play_ms >= config.view_threshold_ms,
                        "a view without the threshold's playing time seen to accrue: {session:?}"
                    );
                    views.push(v);
                }
            }
        }
        // A view needs the threshold's playing time to accrue after a first beat, and that
        // much playing time needs (threshold - grace) / slack of the server's clock.
        let needed = ((config.view_threshold_ms - config.rate_grace_ms) as f64 / config.rate_slack) as i64;
        for v in &views {
            prop_assert!(v.at - t0 >= needed, "a view {} ms after the mint", v.at - t0);
        }
        let stats = state.stats(&config, "film", now);
        prop_assert_eq!(stats.views, views.len() as u64);
        prop_assert!(stats.views <= 2, "more views than viewers in an hour: {}", stats.views);
        let elapsed_s = (now - t0) as f64 / 1000.0;
        prop_assert!(stats.playing_time_s + stats.suspicious_playing_time_s
            <= 4.0 * (elapsed_s * config.rate_slack + 1.0));
        for ratio in [stats.rebuffer_ratio, stats.completion_rate] {
            prop_assert!(ratio.is_finite() && (0.0..=1.0).contains(&ratio), "{ratio}");
        }
        prop_assert!(stats.concurrent_viewers <= 2);
        prop_assert!(stats.sessions + stats.suspicious_sessions <= 4);
        prop_assert!(stats.startup_ms_p95.unwrap_or(0) <= limits::STARTUP_MS);
    }
}
