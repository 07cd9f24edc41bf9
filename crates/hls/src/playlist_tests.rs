use super::*;

fn ll_config() -> PlaylistConfig {
    PlaylistConfig {
        target_duration_ms: 2000,
        window: 3,
        part_target_ms: Some(500),
        map_uri: Some("init.mp4".into()),
    }
}

/// Lines of `text` that start with `tag`.
fn tagged<'a>(text: &'a str, tag: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(tag)).collect()
}

#[test]
fn empty_playlist_is_valid() {
    let p = Playlist::new(PlaylistConfig::default());
    assert_eq!(
        p.render(),
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
    );
    assert_eq!((p.media_sequence(), p.next_msn()), (0, 0));
    assert!(!p.has(0, None));
}

#[test]
fn window_slides_and_reports_dropped_segments() {
    let mut p = Playlist::new(PlaylistConfig::default());
    let mut dropped = Vec::new();
    for i in 0..5u64 {
        assert_eq!(p.start_segment(format!("{i}.ts")), i);
        assert_eq!(p.next_msn(), i);
        dropped.extend(p.end_segment(2000));
        assert_eq!(p.next_msn(), i + 1);
    }
    assert_eq!(dropped, vec![0, 1]);
    assert_eq!(p.media_sequence(), 2);
    let text = p.render();
    assert_eq!(
        text,
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:2\n\
         #EXTINF:2.000,\n2.ts\n#EXTINF:2.000,\n3.ts\n#EXTINF:2.000,\n4.ts\n"
    );
    assert_eq!(p.segment_uri(3), Some("3.ts"));
    assert_eq!(p.segment_uri(1), None);
}

#[test]
fn window_zero_keeps_everything() {
    let mut p = Playlist::new(PlaylistConfig {
        window: 0,
        ..PlaylistConfig::default()
    });
    for i in 0..10 {
        p.start_segment(format!("{i}.ts"));
        assert!(p.end_segment(1000).is_empty());
    }
    assert_eq!(tagged(&p.render(), "#EXTINF").len(), 10);
    assert_eq!(p.media_sequence(), 0);
}

#[test]
fn target_duration_is_the_longest_segment_rounded_up_and_never_shrinks() {
    let mut p = Playlist::new(PlaylistConfig::default());
    p.start_segment("a.ts".into());
    p.end_segment(2001);
    assert_eq!(
        tagged(&p.render(), "#EXT-X-TARGETDURATION"),
        ["#EXT-X-TARGETDURATION:3"]
    );
    assert!(p.render().contains("#EXTINF:2.001,\na.ts\n"));
    p.start_segment("b.ts".into());
    p.end_segment(4500);
    assert_eq!(p.target_duration(), 5);
    for i in 0..3 {
        p.start_segment(format!("{i}.ts"));
        p.end_segment(1000);
    }
    // b.ts left the window; the target duration stays (RFC 8216 §6.2.1).
    assert!(!p.render().contains("b.ts"));
    assert_eq!(p.target_duration(), 5);
    // Never below the configured target either.
    let short = Playlist::new(PlaylistConfig {
        target_duration_ms: 6000,
        ..PlaylistConfig::default()
    });
    assert_eq!(short.target_duration(), 6);
}

#[test]
fn fmp4_playlist_has_a_map() {
    let mut p = Playlist::new(PlaylistConfig {
        map_uri: Some("init.mp4".into()),
        ..PlaylistConfig::default()
    });
    p.start_segment("0.m4s".into());
    p.end_segment(2000);
    let text = p.render();
    assert_eq!(tagged(&text, "#EXT-X-VERSION"), ["#EXT-X-VERSION:7"]);
    assert_eq!(tagged(&text, "#EXT-X-MAP"), ["#EXT-X-MAP:URI=\"init.mp4\""]);
    assert!(tagged(&text, "#EXT-X-PART").is_empty());
}

#[test]
fn ll_hls_tags_are_present_and_well_formed() {
    let mut p = Playlist::new(ll_config());
    for s in 0..5u64 {
        p.start_segment(format!("s{s}.m4s"));
        for i in 0..4u64 {
            let idx = p.add_part(format!("s{s}.{i}.m4s"), 500, i == 0);
            assert_eq!(idx, i);
        }
        p.end_segment(2000);
    }
    p.start_segment("s5.m4s".into());
    p.add_part("s5.0.m4s".into(), 500, true);
    p.set_preload_hint(Some("s5.1.m4s".into()));
    let text = p.render();

    let head: Vec<&str> = text.lines().take(7).collect();
    assert_eq!(
        head,
        [
            "#EXTM3U",
            "#EXT-X-VERSION:9",
            "#EXT-X-TARGETDURATION:2",
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500",
            "#EXT-X-PART-INF:PART-TARGET=0.500",
            "#EXT-X-MEDIA-SEQUENCE:2",
            "#EXT-X-MAP:URI=\"init.mp4\"",
        ]
    );
    // The playlist ends 6.5 s in (three 2 s segments and one part); parts starting in the last
    // 6 s are listed: the last three of s2, all of s3 and s4, and s5's one.
    let parts = tagged(&text, "#EXT-X-PART:");
    assert_eq!(parts.len(), 3 + 4 + 4 + 1, "{text}");
    assert_eq!(parts[0], "#EXT-X-PART:DURATION=0.500,URI=\"s2.1.m4s\"");
    assert_eq!(
        parts[3],
        "#EXT-X-PART:DURATION=0.500,URI=\"s3.0.m4s\",INDEPENDENT=YES"
    );
    for part in &parts {
        assert!(part.contains("DURATION=0.500,URI=\""), "{part}");
    }
    // Parts come before their segment's EXTINF; the in-progress parts and the hint last.
    let s3_part = text.find("s3.3.m4s").expect("part");
    let s3 = text.find("\ns3.m4s\n").expect("segment");
    assert!(s3_part < s3);
    assert!(text.ends_with(
        "#EXT-X-PART:DURATION=0.500,URI=\"s5.0.m4s\",INDEPENDENT=YES\n\
         #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s5.1.m4s\"\n"
    ));
    assert!(
        !text.contains("s5.m4s"),
        "the segment in progress is not listed"
    );
    p.set_preload_hint(None);
    assert!(!p.render().contains("PRELOAD-HINT"));
}

#[test]
fn has_answers_blocking_reloads() {
    let mut p = Playlist::new(ll_config());
    assert!(!p.has(0, None));
    assert!(!p.has(0, Some(0)));
    p.start_segment("s0.m4s".into());
    assert!(!p.has(0, None), "in progress: not contained yet");
    assert!(!p.has(0, Some(0)));
    p.add_part("s0.0.m4s".into(), 500, true);
    assert!(p.has(0, Some(0)));
    assert!(!p.has(0, Some(1)));
    p.add_part("s0.1.m4s".into(), 500, false);
    assert!(p.has(0, Some(1)));
    assert!(!p.has(1, Some(0)), "a future segment");
    p.end_segment(1000);
    assert!(p.has(0, None));
    assert!(
        p.has(0, Some(7)),
        "a finished segment contains all its parts"
    );
    assert!(!p.has(1, None));
    p.start_segment("s1.m4s".into());
    assert!(!p.has(1, Some(0)));
    p.add_part("s1.0.m4s".into(), 500, true);
    assert!(p.has(1, Some(0)));
    assert!(!p.has(2, None));
    // Segments that left the window are answered at once.
    for s in 2..8 {
        p.start_segment(format!("s{s}.m4s"));
        p.end_segment(1000);
    }
    assert!(p.media_sequence() > 0);
    assert!(p.has(0, None));
}

#[test]
fn blocking_reloads_too_far_ahead_are_refused() {
    // PART-TARGET 0.2 s: the Advance Part Limit is 3 / 0.2 = 15 parts.
    let mut p = Playlist::new(PlaylistConfig {
        part_target_ms: Some(200),
        ..ll_config()
    });
    assert!(!p.too_far_ahead(0, None));
    assert!(
        !p.too_far_ahead(2, None),
        "two past the last segment may be held"
    );
    assert!(p.too_far_ahead(3, None));
    assert!(
        !p.too_far_ahead(0, Some(14)),
        "no part yet: parts 0..=14 may be held"
    );
    assert!(p.too_far_ahead(0, Some(15)));
    p.start_segment("s0.m4s".into());
    p.add_part("s0.0.m4s".into(), 200, true);
    p.add_part("s0.1.m4s".into(), 200, false);
    // The last part is 1: up to 1 + 15 may be held.
    assert!(!p.too_far_ahead(0, Some(16)));
    assert!(p.too_far_ahead(0, Some(17)));
    assert!(
        !p.too_far_ahead(1, Some(0)),
        "the next segment's first part"
    );
    assert!(p.too_far_ahead(1, Some(15)));
    p.end_segment(400);
    assert!(
        !p.too_far_ahead(0, Some(99)),
        "a finished segment: answered at once"
    );
    assert!(!p.too_far_ahead(3, None));
    assert!(p.too_far_ahead(4, None));

    // PART-TARGET of a second or more: the limit is three parts.
    let mut p = Playlist::new(PlaylistConfig {
        part_target_ms: Some(1000),
        ..ll_config()
    });
    p.start_segment("s0.m4s".into());
    assert!(!p.too_far_ahead(0, Some(2)));
    assert!(p.too_far_ahead(0, Some(3)));
}

#[test]
fn parts_that_can_no_longer_come_are_known() {
    let mut p = Playlist::new(ll_config());
    assert!(p.part_may_come(0, 0), "nothing started yet");
    p.start_segment("s0.m4s".into());
    p.add_part("s0.0.m4s".into(), 500, true);
    assert!(!p.part_may_come(0, 0), "already listed");
    assert!(p.part_may_come(0, 1));
    assert!(p.part_may_come(1, 0));
    p.end_segment(500);
    assert!(!p.part_may_come(0, 1), "segment 0 ended with one part");
    assert!(p.part_may_come(1, 0));
    p.finish();
    assert!(!p.part_may_come(1, 0), "the stream ended");
}

#[test]
fn starting_a_segment_ends_the_one_in_progress() {
    let mut p = Playlist::new(ll_config());
    p.start_segment("a".into());
    p.add_part("a.0".into(), 400, true);
    p.add_part("a.1".into(), 300, false);
    assert_eq!(p.start_segment("b".into()), 1);
    assert!(p.render().contains("#EXTINF:0.700,\na\n"));
    // A part with no segment starts one.
    let mut q = Playlist::new(ll_config());
    assert_eq!(q.add_part("x.0".into(), 500, true), 0);
    assert_eq!(q.next_msn(), 0);
    assert!(q.has(0, Some(0)));
    assert!(q.end_segment(500).is_empty());
    assert!(q.end_segment(500).is_empty(), "nothing in progress: no-op");
}

#[test]
fn finish_adds_endlist() {
    let mut p = Playlist::new(PlaylistConfig::default());
    p.start_segment("0.ts".into());
    p.end_segment(2000);
    p.start_segment("1.ts".into());
    assert_eq!(
        p.finish(),
        vec![1],
        "an empty segment in progress is dropped"
    );
    let text = p.render();
    assert!(
        text.ends_with("#EXTINF:2.000,\n0.ts\n#EXT-X-ENDLIST\n"),
        "{text}"
    );
    assert!(p.has(5, None), "nothing more will come");
}
