//! Kakao's webhooks, sent by the stand-in as Kakao sends them: the unlink webhook (KakaoAK,
//! GET or POST) and the account status change webhook (Security Event Tokens), their effects
//! through the change service, and the record staff see.

use kakao_login::standin::events as uri;
use kakao_login::standin::{SetFault, SetOptions, WebhookMethod};

use crate::support::{ADMIN_KEY, APP_ID, Browser, Role, TestApp};

/// A signed-in person and their open browser.
async fn person(app: &TestApp, email: &str) -> (Browser, i64, i64) {
    let (browser, kakao_id) = app.signed_in("사람", email).await;
    let user = app.user_by_email(email).expect("user");
    (browser, user.id, kakao_id)
}

async fn signed_in(app: &TestApp, browser: &Browser) -> bool {
    browser.get(&app.url("/api/users/me/")).await.status == 200
}

fn unlink_fields(kakao_id: i64, app_id: i64) -> Vec<(String, String)> {
    vec![
        ("app_id".into(), app_id.to_string()),
        ("user_id".into(), kakao_id.to_string()),
        ("referrer_type".into(), "UNLINK_FROM_APPS".into()),
    ]
}

#[actix_web::test]
async fn the_unlink_webhook_is_kakaos_only_and_ends_the_persons_sessions() {
    let app = TestApp::spawn().await;
    let standin = &app.kakao.standin;
    let (browser, user_id, kakao_id) = person(&app, "unlink@example.com").await;
    let mark = app.audit_mark();

    // Not Kakao: a wrong key, no key, another app's id, a malformed body.
    let fields = unlink_fields(kakao_id, APP_ID);
    let as_pairs = |f: &[(String, String)]| -> Vec<(String, String)> { f.to_vec() };
    for (authorization, fields, status) in [
        (
            Some("KakaoAK not-our-admin-key".to_owned()),
            as_pairs(&fields),
            401,
        ),
        (None, as_pairs(&fields), 401),
        (Some(format!("Bearer {ADMIN_KEY}")), as_pairs(&fields), 401),
        (
            Some(format!("KakaoAK {ADMIN_KEY}")),
            unlink_fields(kakao_id, APP_ID + 1),
            401,
        ),
        (
            Some(format!("KakaoAK {ADMIN_KEY}")),
            vec![("user_id".into(), kakao_id.to_string())],
            400,
        ),
    ] {
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let answer = standin
            .send_unlink_webhook_raw(&pairs, authorization.as_deref(), WebhookMethod::Post)
            .await
            .expect("delivered");
        assert_eq!(
            answer.status, status,
            "{authorization:?} {fields:?}: {}",
            answer.body
        );
    }
    assert!(app.audit_since(mark).is_empty(), "nothing changed");
    assert_eq!(app.kakao_id(user_id), Some(kakao_id));
    assert!(signed_in(&app, &browser).await);

    // Kakao's: the link goes, the open browser is signed out, one audit row by Kakao.
    let answer = standin
        .send_unlink_webhook(kakao_id, "UNLINK_FROM_APPS", WebhookMethod::Post)
        .await
        .expect("delivered");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(app.kakao_id(user_id), None, "the link is removed");
    assert!(
        !signed_in(&app, &browser).await,
        "the open browser is signed out"
    );
    let user = app.user(user_id).expect("the account is kept");
    assert!(user.is_active);
    let rows = app.audit_since(mark);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            rows[0].action.as_str(),
            rows[0].actor_id,
            rows[0].via.as_str()
        ),
        ("kakao_unlink", None, "kakao")
    );
    assert!(
        rows[0]
            .field_changes()
            .iter()
            .any(|c| c.field == "kakao_reason" && c.new == "UNLINK_FROM_APPS"),
        "{rows:?}"
    );

    // A repeat, as GET this time: 200, nothing more.
    let again = standin
        .send_unlink_webhook(kakao_id, "UNLINK_FROM_APPS", WebhookMethod::Get)
        .await
        .expect("delivered");
    assert_eq!(again.status, 200);
    assert_eq!(app.audit_since(mark).len(), 1, "no second audit row");
    // A Kakao user we never had: 200 as well.
    let stranger = app.kakao_user("남", "stranger@example.com");
    let answer = standin
        .send_unlink_webhook(stranger, "UNLINK_FROM_APPS", WebhookMethod::Get)
        .await
        .expect("delivered");
    assert_eq!(answer.status, 200);
    assert_eq!(app.audit_since(mark).len(), 1);

    // The person can come back: signing in with Kakao links the account again by email.
    let again = app.browser();
    let done = app.login_agreeing(&again, kakao_id, None).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        app.user_by_email("unlink@example.com").map(|u| u.id),
        Some(user_id)
    );

    // A deleted Kakao account: unlinked and deactivated.
    let (gone_browser, gone_id, gone_kakao) = person(&app, "deleted@example.com").await;
    let answer = standin
        .send_unlink_webhook(gone_kakao, "ACCOUNT_DELETE", WebhookMethod::Post)
        .await
        .expect("delivered");
    assert_eq!(answer.status, 200);
    assert!(!signed_in(&app, &gone_browser).await);
    assert_eq!(app.user(gone_id).map(|u| u.is_active), Some(false));
}

#[actix_web::test]
async fn security_events_have_their_effects_and_sign_up_events_remove_nobody() {
    let app = TestApp::spawn().await;
    let standin = &app.kakao.standin;
    let opts = SetOptions::default();

    // user-linked and user-scope-consent arrive at sign-up: nobody is removed.
    let (browser, user_id, kakao_id) = person(&app, "events@example.com").await;
    for event in [
        uri::USER_LINKED,
        uri::USER_SCOPE_CONSENT,
        "https://example.com/new-event",
    ] {
        let answer = standin
            .send_security_event(kakao_id, event, &opts)
            .await
            .expect("delivered");
        assert_eq!(answer.status, 202, "{event}: {}", answer.body);
    }
    assert!(signed_in(&app, &browser).await);
    assert_eq!(app.kakao_id(user_id), Some(kakao_id));

    // sessions-revoked: signed out, still linked.
    let answer = standin
        .send_security_event(kakao_id, uri::SESSIONS_REVOKED, &opts)
        .await
        .expect("delivered");
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert!(!signed_in(&app, &browser).await);
    assert_eq!(app.kakao_id(user_id), Some(kakao_id));

    // account-disabled: signed out and no sign-in until account-enabled.
    let browser = app.browser();
    app.login_agreeing(&browser, kakao_id, None).await;
    assert!(signed_in(&app, &browser).await);
    let answer = standin
        .send_security_event(kakao_id, uri::ACCOUNT_DISABLED, &opts)
        .await
        .expect("delivered");
    assert_eq!(answer.status, 202);
    assert!(!signed_in(&app, &browser).await);
    let refused = app.login_agreeing(&app.browser(), kakao_id, None).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        refused.error_code().as_deref(),
        Some("kakao_account_disabled")
    );
    // The subject may also be named inside the event.
    let inside = SetOptions {
        subject_in_event: true,
        ..SetOptions::default()
    };
    let answer = standin
        .send_security_event(kakao_id, uri::ACCOUNT_ENABLED, &inside)
        .await
        .expect("delivered");
    assert_eq!(answer.status, 202, "{}", answer.body);
    let back = app.login_agreeing(&app.browser(), kakao_id, None).await;
    assert_eq!(back.status, 303, "{}", back.body);

    // user-unlinked, with the app id as the audience (sources disagree on aud).
    let browser = app.browser();
    app.login_agreeing(&browser, kakao_id, None).await;
    let by_app_id = SetOptions {
        audience: Some(APP_ID.to_string()),
        ..SetOptions::default()
    };
    let answer = standin
        .send_security_event(kakao_id, uri::USER_UNLINKED, &by_app_id)
        .await
        .expect("delivered");
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert!(!signed_in(&app, &browser).await);
    assert_eq!(app.kakao_id(user_id), None);
    let kinds: Vec<String> = app
        .audit_rows()
        .into_iter()
        .filter(|r| r.via == "kakao")
        .map(|r| r.action)
        .collect();
    assert_eq!(
        kinds,
        [
            "sign_out_everywhere",
            "kakao_disable",
            "kakao_enable",
            "kakao_unlink"
        ]
    );
}

#[actix_web::test]
async fn bad_security_event_tokens_are_refused_with_rfc_8935_errors_and_change_nothing() {
    let app = TestApp::spawn().await;
    let standin = &app.kakao.standin;
    let (browser, user_id, kakao_id) = person(&app, "target@example.com").await;
    let mark = app.audit_mark();
    for (fault, err) in [
        (SetFault::BadSignature, "invalid_key"),
        (SetFault::OtherKid, "invalid_key"),
        (SetFault::AlgNone, "invalid_key"),
        (SetFault::Hs256WithPublicKey, "invalid_key"),
        (SetFault::WrongIssuer, "invalid_issuer"),
        (SetFault::WrongAudience, "invalid_audience"),
        (SetFault::Expired, "invalid_request"),
    ] {
        let options = SetOptions {
            fault: Some(fault.clone()),
            ..SetOptions::default()
        };
        let answer = standin
            .send_security_event(kakao_id, uri::USER_UNLINKED, &options)
            .await
            .expect("delivered");
        assert_eq!(answer.status, 400, "{fault:?}: {}", answer.body);
        let body: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
        assert_eq!(body["err"], err, "{fault:?}: {body}");
        assert!(body["description"].is_string());
    }
    // None of them changed anything: still linked, still signed in, no audit row.
    assert_eq!(app.kakao_id(user_id), Some(kakao_id));
    assert!(signed_in(&app, &browser).await);
    assert!(app.audit_since(mark).is_empty());

    // A replay: the first delivery has its effect, the second is refused.
    let token =
        standin.mint_security_event(kakao_id, uri::SESSIONS_REVOKED, &SetOptions::default());
    let first = standin
        .post_security_event(&token)
        .await
        .expect("delivered");
    assert_eq!(first.status, 202);
    assert!(!signed_in(&app, &browser).await);
    let browser = app.browser();
    app.login_agreeing(&browser, kakao_id, None).await;
    let replay = standin
        .post_security_event(&token)
        .await
        .expect("delivered");
    assert_eq!(replay.status, 400);
    assert!(replay.body.contains("invalid_request"), "{}", replay.body);
    assert!(
        signed_in(&app, &browser).await,
        "the replay changed nothing"
    );
    let rows = app.audit_since(mark);
    assert_eq!(rows.len(), 1, "only the first delivery acted: {rows:?}");
    assert_eq!(app.kakao_id(user_id), Some(kakao_id));

    // Not a SET at all.
    let res = app
        .browser()
        .request(
            "POST",
            &app.url("/kakao/webhooks/events/"),
            Some(&token),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(res.status, 400);
    let res = app
        .browser()
        .request(
            "POST",
            &app.url("/kakao/webhooks/events/"),
            Some("not.a.token"),
            &[("content-type", "application/secevent+jwt")],
        )
        .await;
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["err"], "invalid_request");
}

#[actix_web::test]
async fn staff_see_every_delivery_and_others_do_not() {
    let app = TestApp::spawn().await;
    let standin = &app.kakao.standin;
    let (_, user_id, kakao_id) = person(&app, "seen@example.com").await;
    standin
        .send_unlink_webhook_raw(
            &[
                ("app_id", "1"),
                ("user_id", "2"),
                ("referrer_type", "UNLINK_FROM_APPS"),
            ],
            Some("KakaoAK wrong"),
            WebhookMethod::Post,
        )
        .await
        .expect("delivered");
    standin
        .send_unlink_webhook(kakao_id, "UNLINK_FROM_APPS", WebhookMethod::Post)
        .await
        .expect("delivered");
    // A repeat finds nobody linked now, and is still shown with the person it was about.
    standin
        .send_unlink_webhook(kakao_id, "UNLINK_FROM_APPS", WebhookMethod::Get)
        .await
        .expect("delivered");
    let (staff, _) = app.signed_in_as(Role::Staff, "staff@example.com").await;
    let page = staff.get(&app.url("/admin/webhooks/")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("data-outcome=\"applied\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("data-outcome=\"refused\""));
    let refused = staff
        .get(&app.url("/admin/webhooks/?outcome=refused"))
        .await;
    assert!(refused.body.contains("data-outcome=\"refused\""));
    assert!(!refused.body.contains("data-outcome=\"applied\""));
    assert_eq!(
        staff
            .get(&app.url("/admin/webhooks/?outcome=bogus"))
            .await
            .status,
        400
    );
    let detail = staff
        .get(&app.url(&format!("/admin/users/{user_id}/")))
        .await;
    assert!(
        detail.body.contains("data-outcome=\"applied\""),
        "{}",
        detail.body
    );
    assert!(detail.body.contains("data-outcome=\"no_change\""));
    assert!(detail.body.contains("already applied by delivery #"));

    let (member, _) = app.signed_in_as(Role::Member, "member@example.com").await;
    assert_eq!(member.get(&app.url("/admin/webhooks/")).await.status, 403);
    let anonymous = app.browser().get(&app.url("/admin/webhooks/")).await;
    assert_eq!(anonymous.status, 303);
}
