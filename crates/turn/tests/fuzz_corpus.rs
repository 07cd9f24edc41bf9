//! Replays the committed fuzz corpus (`fuzz/corpus/turn_*/`) and any past crashes
//! (`fuzz/regressions/turn_*/`) through the same functions the cargo-fuzz targets call, on
//! stable Rust. `UPDATE_GOLDEN=1` rewrites the seed files this test generates.

mod common;

use turn::fuzzing;

#[test]
fn corpus_replays_without_panic() {
    fuzzkit::replay(&fuzzing::TARGETS, fuzzing::run);
}

/// Writes the seed corpus when `UPDATE_GOLDEN=1`; otherwise checks the generated seeds are
/// still what is committed (so a format change cannot silently stale the corpus).
#[test]
fn seed_corpus_is_current() {
    fuzzkit::check_seeds(common::seeds());
}

/// The valid seeds decode, and those with MESSAGE-INTEGRITY verify under their key.
#[test]
fn valid_seeds_decode_and_verify() {
    let key = common::alice_key();
    for (target, name, data) in common::seeds() {
        if target != "turn_stun" || name.starts_with("bad_") {
            continue;
        }
        let msg = turn::stun::Message::decode(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
        let has_mi = msg.attribute(turn::attr::MESSAGE_INTEGRITY).is_some();
        if has_mi && !name.starts_with("rfc5769") {
            assert!(turn::stun::Message::check_integrity(&data, &key), "{name}");
        }
        if !name.starts_with("rfc5769_2_4") {
            assert!(turn::stun::Message::check_fingerprint(&data), "{name}");
        }
    }
}

/// The `turn_server` flow seed really reaches the deep states: allocation, permission,
/// channel, relaying both ways, then the deletion.
#[test]
fn server_flow_seed_relays() {
    let data =
        std::fs::read(fuzzkit::fuzz_dir().join("corpus/turn_server/allocate_relay_expire.bin"))
            .expect("seed");
    let stats = fuzzing::server(&data);
    // Send indication, peer datagram, ChannelData.
    assert_eq!(stats.relayed_packets, 3, "{stats:?}");
    assert_eq!(stats.allocations, 0, "{stats:?}");
    assert_eq!(stats.auth_failures, 0, "{stats:?}");
    let data = std::fs::read(fuzzkit::fuzz_dir().join("corpus/turn_server/tcp_and_timeouts.bin"))
        .expect("seed");
    let stats = fuzzing::server(&data);
    assert_eq!(stats.allocations, 0, "{stats:?}");
}

/// The reservation seed reaches EVEN-PORT R=1, the token's redemption from another 5-tuple,
/// and a reservation's expiry.
#[test]
fn server_reservation_seed_reserves_redeems_and_expires() {
    let data = std::fs::read(fuzzkit::fuzz_dir().join("corpus/turn_server/reserve_and_redeem.bin"))
        .expect("seed");
    let stats = fuzzing::server(&data);
    // The redeemed allocation (TCP) and the second reserving one (UDP); its reservation
    // expired after 31 s.
    assert_eq!((stats.allocations, stats.reservations), (2, 0), "{stats:?}");
    assert_eq!(
        (stats.auth_failures, stats.quota_rejections),
        (0, 0),
        "{stats:?}"
    );
}
