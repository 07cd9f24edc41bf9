//! Long-term credentials: wrong and stale credentials, REST credentials, the password hook.

use super::*;

#[test]
fn wrong_password_unknown_user_and_bad_realm_are_401() {
    let mut p = Pair::new(config());
    for (u, pw) in [(USER, "nope"), ("mallory", "x")] {
        let n = p.nonce();
        let (_, raw) = p.build(
            Class::Request,
            Method::Allocate,
            &[Attribute::RequestedTransport(17)],
            Some((u, pw, &n)),
        );
        let (m, _, rest) = p.call(p.client, &raw);
        assert_eq!(code(&m), Some(401));
        assert!(m.nonce().is_some() && rest.is_empty());
    }
    assert_eq!(p.s.stats().auth_failures, 2);
    // Missing USERNAME with an MI: 400.
    let tid = p.next_tid();
    let mut b = MessageBuilder::new(Class::Request, Method::Refresh, tid);
    b.add_message_integrity(b"k").unwrap();
    assert_eq!(code(&p.call(p.client, &b.finish()).0), Some(400));
}

#[test]
fn stale_nonce_is_438_then_fresh_nonce_works() {
    let mut p = Pair::new(config());
    let old = p.nonce();
    p.advance(3600);
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some((USER, PW, &old)),
    );
    let (m, _, _) = p.call(p.client, &raw);
    assert_eq!(code(&m), Some(438));
    let fresh = m.nonce().unwrap().to_owned();
    assert_ne!(fresh, old);
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some((USER, PW, &fresh)),
    );
    assert!(matches!(
        p.input(p.client, &raw).as_slice(),
        [Output::AllocateRelay { .. }]
    ));
    // A forged nonce is 438 too.
    let (_, raw) = p.build(
        Class::Request,
        Method::Refresh,
        &[],
        Some((USER, PW, "0000000000000000000000000000000000000000000000ff")),
    );
    assert_eq!(code(&p.call(p.client, &raw).0), Some(438));
}

#[test]
fn rest_credentials_valid_expired_wrong() {
    let secret = "s3cret";
    let mut p = Pair::new(Config {
        auth_secret: Some(secret.into()),
        ..Config::default()
    });
    let user = format!("{}:bob", p.unix + 60);
    let pw = auth::rest_password(secret.as_bytes(), &user);
    p.allocate_as(p.client, &user, &pw);
    let other = udp("203.0.113.5:50001");
    let n = p.nonce();
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some((&user, "wrong", &n)),
    );
    assert_eq!(code(&p.call(other, &raw).0), Some(401));
    let expired = format!("{}:bob", p.unix - 1);
    let pw = auth::rest_password(secret.as_bytes(), &expired);
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some((&expired, &pw, &n)),
    );
    assert_eq!(code(&p.call(other, &raw).0), Some(401));
}

#[test]
fn hook_password_path() {
    let mut p = Pair::new(Config {
        password_hook: true,
        ..Config::default()
    });
    let n = p.nonce();
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some(("carol", "pw", &n)),
    );
    let outs = p.input(p.client, &raw);
    let [Output::PasswordRequest {
        request,
        username,
        realm,
        client,
    }] = outs.as_slice()
    else {
        panic!("{outs:?}")
    };
    assert_eq!(
        (username.as_str(), realm.as_str(), *client),
        ("carol", "ferrostream", p.client.client)
    );
    assert_eq!(p.s.stats().parked_auth, 1);
    // Retransmission while parked: nothing new.
    assert!(p.input(p.client, &raw).is_empty());
    p.s.provide_password(p.now, *request, Some("pw".into()));
    assert!(matches!(
        p.drain().as_slice(),
        [Output::AllocateRelay { .. }]
    ));
    assert_eq!(p.s.stats().parked_auth, 0);
    // Cached now: a second request does not ask.
    let other = udp("203.0.113.5:40000");
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some(("carol", "pw", &n)),
    );
    assert!(matches!(
        p.input(other, &raw).as_slice(),
        [Output::AllocateRelay { .. }]
    ));
    // Unknown user: None → 401.
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some(("dave", "pw", &n)),
    );
    let outs = p.input(udp("203.0.113.5:40001"), &raw);
    let [Output::PasswordRequest { request, .. }] = outs.as_slice() else {
        panic!("{outs:?}")
    };
    p.s.provide_password(p.now, *request, None);
    assert_eq!(code(&split(p.drain()).0), Some(401));
    // No answer in time: 401 at the deadline.
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some(("erin", "pw", &n)),
    );
    p.input(udp("203.0.113.5:40002"), &raw);
    assert_eq!(p.s.poll_timeout(), Some(p.now + Duration::from_secs(5)));
    assert_eq!(code(&split(p.advance(5)).0), Some(401));
}

#[test]
fn parked_requests_are_bounded() {
    let mut p = Pair::new(Config {
        password_hook: true,
        max_parked_auth: 1,
        ..Config::default()
    });
    let n = p.nonce();
    let (_, raw) = p.build(Class::Request, Method::Refresh, &[], Some(("u1", "pw", &n)));
    assert!(matches!(
        p.input(p.client, &raw).as_slice(),
        [Output::PasswordRequest { .. }]
    ));
    let (_, raw) = p.build(Class::Request, Method::Refresh, &[], Some(("u2", "pw", &n)));
    assert_eq!(code(&p.call(p.client, &raw).0), Some(500));
    assert_eq!(p.s.stats().parked_overflow, 1);
}
