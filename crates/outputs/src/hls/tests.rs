//! LL-HLS requests against one stream's HLS, fed as its muxing task feeds it (segments, chunks
//! of parts, parts): the preload-hinted part streamed as it is produced, blocking reloads
//! answered when their part is out, refused when too far ahead, and the bound on held requests.

use super::mux::{add_chunk, end_part_at, Current};
use super::*;

/// A stream's LL-HLS as `build` makes it: 2 s segments, 200 ms parts.
fn ll_stream(max_waiters: usize) -> Arc<HlsStream> {
    Arc::new(HlsStream::new(
        PlaylistConfig {
            target_duration_ms: 2000,
            window: 3,
            part_target_ms: Some(200),
            map_uri: Some("hls_init.mp4".into()),
        },
        None,
        max_waiters,
    ))
}

/// Starts segment `msn` at `dts`, as `mux_fmp4` does at a keyframe.
fn start_segment(out: &HlsStream, dts: u64) -> Current {
    let mut state = lock(&out.state);
    let next = state.playlist.next_msn();
    let msn = state.playlist.start_segment(format!("hls_{next}.m4s"));
    state.segments.insert(msn, Vec::new());
    state
        .playlist
        .set_preload_hint(Some(format!("hls_{msn}.0.m4s")));
    drop(state);
    out.bump();
    Current {
        msn,
        segment_start: dts,
        part_start: dts,
        part_end: dts,
        independent: false,
    }
}

/// Ends the segment in progress, as `mux_fmp4` does before the next keyframe.
fn end_segment(out: &HlsStream, current: &Current, dts: u64) {
    let mut state = lock(&out.state);
    state
        .playlist
        .end_segment(dts.saturating_sub(current.segment_start));
    state.complete.insert(current.msn, true);
    drop(state);
    out.bump();
}

/// A chunk of one 40 ms frame starting at `dts`, its bytes `tag` repeated.
fn chunk(dts: u64, tag: u8, independent: bool) -> mp4::Fragment {
    mp4::Fragment {
        data: Bytes::from(vec![tag; 100]),
        mdat_payload: 0..0,
        start_ms: dts,
        duration_ms: 40,
        independent,
        samples: Vec::new(),
        sequence: 0,
    }
}

/// Lets spawned requests run up to their first wait.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_hinted_part_asked_for_before_it_exists_gets_its_bytes_as_they_are_produced() {
    let out = ll_stream(MAX_WAITERS);
    let mut c = start_segment(&out, 0);
    // The hint is hls_0.0.m4s; nothing of it exists yet.
    assert!(lock(&out.state)
        .playlist
        .render()
        .contains("PRELOAD-HINT:TYPE=PART,URI=\"hls_0.0.m4s\""));
    let request = tokio::spawn({
        let out = Arc::clone(&out);
        async move { out.part(0, 0).await }
    });
    settle().await;
    assert!(
        !request.is_finished(),
        "held until the part's first bytes exist"
    );

    add_chunk(&out, &mut c, chunk(0, 1, true));
    let answer = tokio::time::timeout(Duration::from_secs(1), request)
        .await
        .expect("answered once the first chunk exists")
        .expect("task");
    let PartAnswer::Streamed(mut body) = answer else {
        panic!("streamed, got {answer:?}");
    };
    assert_eq!(body.next().await, Some(Ok(Bytes::from(vec![1; 100]))));

    // The next chunk comes when it is produced, while the part is still being written.
    let next = tokio::spawn(async move {
        let got = body.next().await;
        (body, got)
    });
    settle().await;
    assert!(!next.is_finished(), "no second chunk yet");
    add_chunk(&out, &mut c, chunk(40, 2, false));
    let (mut body, got) = tokio::time::timeout(Duration::from_secs(1), next)
        .await
        .expect("the second chunk in time")
        .expect("task");
    assert_eq!(got, Some(Ok(Bytes::from(vec![2; 100]))));
    assert!(
        !lock(&out.state).playlist.has(0, Some(0)),
        "streamed before the part is listed"
    );

    add_chunk(&out, &mut c, chunk(80, 3, false));
    end_part_at(&out, &mut c, Some(120));
    assert_eq!(body.next().await, Some(Ok(Bytes::from(vec![3; 100]))));
    assert_eq!(body.next().await, None, "the part is complete");
    drop(body);

    // The part as listed is the chunks in order, and a request now gets it whole.
    let text = lock(&out.state).playlist.render();
    assert!(
        text.contains("#EXT-X-PART:DURATION=0.120,URI=\"hls_0.0.m4s\",INDEPENDENT=YES"),
        "{text}"
    );
    assert!(text.contains("PRELOAD-HINT:TYPE=PART,URI=\"hls_0.1.m4s\""));
    let PartAnswer::Whole(whole) = out.part(0, 0).await else {
        panic!("whole");
    };
    let mut want = vec![1; 100];
    want.extend([2; 100]);
    want.extend([3; 100]);
    assert_eq!(whole, Bytes::from(want));
    assert_eq!(out.waiters.load(Ordering::Acquire), 0, "every place freed");
}

#[tokio::test]
async fn a_streamed_part_joined_late_gets_what_was_produced_then_the_rest() {
    let out = ll_stream(MAX_WAITERS);
    let mut c = start_segment(&out, 0);
    add_chunk(&out, &mut c, chunk(0, 1, true));
    add_chunk(&out, &mut c, chunk(40, 2, false));
    let PartAnswer::Streamed(mut body) = out.part(0, 0).await else {
        panic!("streamed");
    };
    assert_eq!(body.next().await, Some(Ok(Bytes::from(vec![1; 100]))));
    assert_eq!(body.next().await, Some(Ok(Bytes::from(vec![2; 100]))));
    end_part_at(&out, &mut c, Some(80));
    assert_eq!(body.next().await, None);
}

#[tokio::test]
async fn a_part_that_can_no_longer_come_is_missing_at_once() {
    let out = ll_stream(MAX_WAITERS);
    let mut c = start_segment(&out, 0);
    add_chunk(&out, &mut c, chunk(0, 1, true));
    end_part_at(&out, &mut c, Some(40));
    // The segment ends with one part; the hinted hls_0.1.m4s will never exist.
    end_segment(&out, &c, 40);
    let answer = tokio::time::timeout(Duration::from_millis(100), out.part(0, 1))
        .await
        .expect("not held");
    assert!(matches!(answer, PartAnswer::Missing), "{answer:?}");
    // A part far past the last is not held either.
    let answer = tokio::time::timeout(Duration::from_millis(100), out.part(1, 40))
        .await
        .expect("not held");
    assert!(matches!(answer, PartAnswer::Missing), "{answer:?}");
}

#[tokio::test]
async fn a_blocking_reload_is_answered_when_its_part_is_out() {
    let out = ll_stream(MAX_WAITERS);
    let mut c = start_segment(&out, 0);
    add_chunk(&out, &mut c, chunk(0, 1, true));
    end_part_at(&out, &mut c, Some(40));
    // No whole segment yet: a blocking reload for a listed part is answered at once.
    let text = tokio::time::timeout(Duration::from_millis(100), out.playlist(Some(0), Some(0)))
        .await
        .expect("not held")
        .expect("playlist");
    assert!(text.contains("URI=\"hls_0.0.m4s\""), "{text}");

    // One for the next part is held until that part is complete, then answered at once.
    let request = tokio::spawn({
        let out = Arc::clone(&out);
        async move { out.playlist(Some(0), Some(1)).await }
    });
    settle().await;
    assert!(!request.is_finished(), "held");
    add_chunk(&out, &mut c, chunk(40, 2, false));
    settle().await;
    assert!(!request.is_finished(), "a chunk is not a complete part");
    end_part_at(&out, &mut c, Some(80));
    let text = tokio::time::timeout(Duration::from_millis(200), request)
        .await
        .expect("answered within 200 ms of the part")
        .expect("task")
        .expect("playlist");
    assert!(text.contains("URI=\"hls_0.1.m4s\""), "{text}");
    assert!(text.contains("PRELOAD-HINT:TYPE=PART,URI=\"hls_0.2.m4s\""));
}

#[tokio::test(start_paused = true)]
async fn a_blocking_reload_is_held_three_target_durations_at_most() {
    let out = ll_stream(MAX_WAITERS);
    let mut c = start_segment(&out, 0);
    add_chunk(&out, &mut c, chunk(0, 1, true));
    end_part_at(&out, &mut c, Some(40));
    let start = Instant::now();
    let text = out.playlist(Some(0), Some(3)).await.expect("playlist");
    // Target duration 2 s: held 6 s, then answered with the playlist as it is.
    assert_eq!(start.elapsed(), Duration::from_secs(6));
    assert!(!text.contains("hls_0.3.m4s"));

    // A part asked for that does not start in time: two target durations, then missing.
    let start = Instant::now();
    assert!(matches!(out.part(0, 1).await, PartAnswer::Missing));
    assert_eq!(start.elapsed(), Duration::from_secs(4));
}

#[tokio::test]
async fn blocking_reloads_too_far_ahead_are_refused_at_once() {
    let out = ll_stream(MAX_WAITERS);
    let mut c = start_segment(&out, 0);
    add_chunk(&out, &mut c, chunk(0, 1, true));
    end_part_at(&out, &mut c, Some(40));
    for (msn, part) in [(3, None), (0, Some(16)), (1, Some(15))] {
        let answer =
            tokio::time::timeout(Duration::from_millis(100), out.playlist(Some(msn), part))
                .await
                .expect("not held");
        assert_eq!(answer, Err(PlaylistError::TooFarAhead), "{msn} {part:?}");
    }
}

#[tokio::test]
async fn held_requests_are_bounded() {
    let out = ll_stream(2);
    let mut c = start_segment(&out, 0);
    add_chunk(&out, &mut c, chunk(0, 1, true));
    end_part_at(&out, &mut c, Some(40));
    let held: Vec<_> = (1..=2)
        .map(|part| {
            let out = Arc::clone(&out);
            tokio::spawn(async move { out.playlist(Some(0), Some(part)).await })
        })
        .collect();
    settle().await;
    assert_eq!(out.waiters.load(Ordering::Acquire), 2);
    // A third that would wait is refused at once; one answerable now is not held, so served.
    assert_eq!(
        out.playlist(Some(0), Some(3)).await,
        Err(PlaylistError::Busy)
    );
    assert!(matches!(out.part(0, 1).await, PartAnswer::Busy));
    assert!(out.playlist(Some(0), Some(0)).await.is_ok());
    // When the held ones are answered their places are free again.
    add_chunk(&out, &mut c, chunk(40, 2, false));
    end_part_at(&out, &mut c, Some(80));
    add_chunk(&out, &mut c, chunk(80, 3, false));
    end_part_at(&out, &mut c, Some(120));
    for h in held {
        assert!(h.await.expect("task").is_ok());
    }
    assert_eq!(out.waiters.load(Ordering::Acquire), 0);
    let request = tokio::spawn({
        let out = Arc::clone(&out);
        async move { out.playlist(Some(0), Some(3)).await }
    });
    settle().await;
    assert!(!request.is_finished(), "held again");
    request.abort();
}

#[test]
fn the_part_target_is_bounded_by_the_segment() {
    let options = |seg_ms, part_ms| HlsOptions {
        segment: Duration::from_millis(seg_ms),
        part: Duration::from_millis(part_ms),
        ..HlsOptions::default()
    };
    assert_eq!(part_target_ms(&HlsOptions::default()), 200);
    assert_eq!(part_target_ms(&options(2000, 10)), MIN_PART_MS);
    assert_eq!(part_target_ms(&options(1000, 5000)), 1000);
}
