//! What Kakao offers beyond signing in: `prompt` and `login_hint`, Kakao's answers to
//! `prompt=none`, "log out of Kakao too", leaving from the web, the consent items, and the
//! token endpoint's KOE codes.

use kakao_login::standin::{Consent, Endpoint, Fault};

use crate::support::{Browser, TestApp, query_of};

#[actix_web::test]
async fn prompt_and_login_hint_reach_kakao_and_unknown_prompts_are_refused() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    for prompt in ["login", "select_account", "create", "none"] {
        let start = browser
            .get(&app.url(&format!(
                "/kakao/login/?prompt={prompt}&login_hint=gildong%40example.com"
            )))
            .await;
        assert_eq!(start.status, 302, "{prompt}: {}", start.body);
        let q = query_of(&start.location());
        assert_eq!(q["prompt"], prompt);
        assert_eq!(q["login_hint"], "gildong@example.com");
    }
    let plain = query_of(&app.start_login(&browser, None).await);
    assert!(!plain.contains_key("prompt") && !plain.contains_key("login_hint"));
    for bad in ["consent", "LOGIN", "login,none", "", "none%20"] {
        let res = browser
            .get(&app.url(&format!("/kakao/login/?prompt={bad}")))
            .await;
        assert_eq!(res.status, 400, "{bad:?}");
        assert_eq!(
            res.error_code().as_deref(),
            Some("unknown_prompt"),
            "{bad:?}"
        );
    }
    let long = "a".repeat(300);
    let res = browser
        .get(&app.url(&format!("/kakao/login/?login_hint={long}")))
        .await;
    assert_eq!(res.status, 400);
    // Kakao (the stand-in) gets the account chooser request.
    let start = browser
        .get(&app.url("/kakao/login/?prompt=select_account"))
        .await;
    let chooser = browser.get(&start.location()).await;
    assert_eq!(chooser.status, 200, "{}", chooser.body);
    let seen = app.kakao.standin.last_authorize_query().expect("seen");
    assert_eq!(seen["prompt"], "select_account");

    // The login page offers another Kakao account.
    let page = app.browser().get(&app.url("/")).await;
    assert!(
        page.body
            .contains("href=\"/kakao/login/?prompt=select_account\""),
        "{}",
        page.body
    );
}

/// `prompt=none`: a code when the browser's Kakao session has agreed to everything, else
/// Kakao's answer, each with a page of its own (never "cancelled").
#[actix_web::test]
async fn kakaos_answers_to_prompt_none_each_get_their_own_page() {
    let app = TestApp::spawn().await;
    let silent = |browser: &Browser| {
        let url = app.url("/kakao/login/?prompt=none");
        let browser = browser.clone_cookies();
        async move {
            let start = browser.get(&url).await;
            assert_eq!(start.status, 302, "{}", start.body);
            let at_kakao = browser.get(&start.location()).await;
            assert_eq!(at_kakao.status, 302, "{}", at_kakao.body);
            (browser.get(&at_kakao.location()).await, browser)
        }
    };
    // No Kakao session in this browser.
    let (done, _) = silent(&app.browser()).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.error_code().as_deref(), Some("login_required"));

    // Signed in to Kakao, but the email was declined: consent is required.
    let declined = app.kakao_user("거절", "declined@example.com");
    let browser = app.browser();
    let first = app
        .login_as(
            &browser,
            Consent::Agree {
                kakao_id: declined,
                share_email: false,
            },
            None,
        )
        .await;
    assert_eq!(first.error_code().as_deref(), Some("email_required"));
    let (done, _) = silent(&browser).await;
    assert_eq!(done.error_code().as_deref(), Some("consent_required"));

    // Everything agreed before: straight in, without a Kakao page.
    let (browser, _) = app.signed_in("다시", "again@example.com").await;
    let fresh = browser.clone_cookies();
    fresh.cookies.borrow_mut().remove("kakao_login");
    let (done, signed_in) = silent(&fresh).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let profile = signed_in.get(&app.url("/profile/")).await;
    assert_eq!(profile.status, 200);

    // interaction_required, as Kakao may answer it.
    app.kakao.standin.fail_next(
        Endpoint::Authorize,
        Fault::AuthorizeError("interaction_required".into()),
        1,
    );
    let (done, _) = silent(&app.browser()).await;
    assert_eq!(done.error_code().as_deref(), Some("interaction_required"));
}

/// "Log out of Kakao too": the session ends here first, the browser goes to Kakao's account
/// logout with a state, and the return is accepted once, from this browser only.
#[actix_web::test]
async fn logging_out_of_kakao_too_ends_the_session_and_checks_the_state() {
    let app = TestApp::spawn().await;
    let (browser, _) = app.signed_in("길동", "gildong@example.com").await;
    let saved = browser.clone_cookies();
    let page = browser.get(&app.url("/kakao/logout/")).await;
    assert!(
        page.body.contains("name=\"kakao_account\" value=\"1\""),
        "{}",
        page.body
    );
    let token = page.input_value("csrf_token").expect("csrf");
    let out = browser
        .post_form(
            &app.url("/kakao/logout/"),
            &[("csrf_token", &token), ("kakao_account", "1")],
        )
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    let to_kakao = out.location();
    assert!(
        to_kakao.starts_with(&format!("{}/oauth/logout?", app.kakao.base_url)),
        "{to_kakao}"
    );
    let q = query_of(&to_kakao);
    assert_eq!(q["client_id"], crate::support::CLIENT_ID);
    assert_eq!(q["logout_redirect_uri"], app.url("/kakao/logout/callback/"));
    assert!(q["state"].len() >= 22);
    // Signed out here already: neither this browser nor a saved copy of its cookie works.
    assert_eq!(browser.get(&app.url("/profile/")).await.status, 303);
    assert_eq!(saved.get(&app.url("/profile/")).await.status, 303);

    let at_kakao = browser.get(&to_kakao).await;
    assert_eq!(at_kakao.status, 302, "{}", at_kakao.body);
    assert_eq!(app.kakao.standin.hits(Endpoint::AccountLogout), 1);
    let back = at_kakao.location();
    assert_eq!(query_of(&back)["state"], q["state"]);
    // Another browser cannot use this state.
    let stranger = app.browser();
    let foreign = stranger.get(&back).await;
    assert_eq!(foreign.status, 400);
    assert_eq!(
        foreign.error_code().as_deref(),
        Some("logout_state_invalid")
    );
    let copy = browser.clone_cookies();
    let done = browser.get(&back).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/?logged_out=kakao");
    let home = browser.get(&app.url("/?logged_out=kakao")).await;
    assert!(home.body.contains("카카오계정에서도 로그아웃했습니다"));
    // Once only, even with the cookie as it was before the return.
    for replay in [&browser, &copy] {
        let again = replay.get(&back).await;
        assert_eq!(again.status, 400);
        assert_eq!(again.error_code().as_deref(), Some("logout_state_invalid"));
    }
    let none = browser.get(&app.url("/kakao/logout/callback/")).await;
    assert_eq!(none.status, 400);

    // Two browsers, each on its way back from Kakao: each one's state is its own.
    let mut pending = Vec::new();
    for email in ["first@example.com", "second@example.com"] {
        let (b, _) = app.signed_in("각자", email).await;
        let token = app.csrf(&b, "/kakao/logout/").await;
        let out = b
            .post_form(
                &app.url("/kakao/logout/"),
                &[("csrf_token", &token), ("kakao_account", "1")],
            )
            .await;
        let back = b.get(&out.location()).await.location();
        pending.push((b, back));
    }
    let (first, first_back) = &pending[0];
    let (second, second_back) = &pending[1];
    assert_eq!(
        first.get(second_back).await.status,
        400,
        "not this browser's"
    );
    assert_eq!(
        second.get(first_back).await.status,
        400,
        "not this browser's"
    );
    assert_eq!(first.get(first_back).await.status, 303);
    assert_eq!(second.get(second_back).await.status, 303);

    // Only this service: nothing at Kakao.
    let at_kakao_before = app.kakao.standin.hits(Endpoint::AccountLogout);
    let (browser, _) = app.signed_in("둘", "two@example.com").await;
    let token = app.csrf(&browser, "/kakao/logout/").await;
    let out = browser
        .post_form(
            &app.url("/kakao/logout/"),
            &[("csrf_token", &token), ("kakao_account", "0")],
        )
        .await;
    assert_eq!(out.location(), "/?logged_out=1");
    assert_eq!(
        app.kakao.standin.hits(Endpoint::AccountLogout),
        at_kakao_before
    );
}

/// Leaving on the web: a confirmation page, then the account is deleted through the change
/// service (audited as the person's own act), unlinked at Kakao, every session ended.
#[actix_web::test]
async fn a_person_can_leave_from_the_web() {
    let app = TestApp::spawn().await;
    let (browser, kakao_id) = app.signed_in("떠남", "leaving@example.com").await;
    let user = app.user_by_email("leaving@example.com").expect("user");
    let other_device = app.browser();
    app.login_agreeing(&other_device, kakao_id, None).await;
    let profile = browser.get(&app.url("/profile/")).await;
    assert!(profile.body.contains("href=\"/profile/leave/\""));
    let confirm = browser.get(&app.url("/profile/leave/")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("leaving@example.com"));
    let refused = browser
        .post_form(&app.url("/profile/leave/"), &[("csrf_token", "wrong")])
        .await;
    assert_eq!(refused.status, 403);
    assert!(app.user(user.id).is_some());

    let mark = app.audit_mark();
    let token = confirm.input_value("csrf_token").expect("csrf");
    let left = browser
        .post_form(&app.url("/profile/leave/"), &[("csrf_token", &token)])
        .await;
    assert_eq!(left.status, 303, "{}", left.body);
    assert_eq!(left.location(), "/goodbye/?unlink=unlinked");
    assert!(app.user(user.id).is_none());
    assert_eq!(app.kakao.standin.unlinked(), vec![kakao_id]);
    let rows = app.audit_since(mark);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            rows[0].action.as_str(),
            rows[0].actor_id,
            rows[0].target_id,
            rows[0].via.as_str()
        ),
        ("delete", Some(user.id), Some(user.id), "profile")
    );
    let goodbye = browser.get(&app.url("/goodbye/?unlink=unlinked")).await;
    assert_eq!(goodbye.status, 200);
    assert!(goodbye.body.contains("카카오계정과의 연결도 끊었습니다"));
    for device in [&browser, &other_device] {
        assert_eq!(device.get(&app.url("/profile/")).await.status, 303);
    }
    assert_eq!(
        app.browser().get(&app.url("/profile/leave/")).await.status,
        303
    );
}

/// The consent items, with the admin key: on the profile page and the admin's user detail;
/// a Kakao failure shows "not available" and the page still works.
#[actix_web::test]
async fn consent_items_are_shown_and_a_kakao_failure_degrades() {
    let app = TestApp::spawn().await;
    let (browser, _) = app.signed_in("동의", "consent@example.com").await;
    let profile = browser.get(&app.url("/profile/")).await;
    assert_eq!(profile.status, 200);
    assert!(
        profile
            .body
            .contains("data-consent=\"account_email\" data-agreed=\"1\""),
        "{}",
        profile.body
    );
    assert!(profile.body.contains("data-consent=\"profile_nickname\""));
    assert!(!profile.body.contains("data-testid=\"email-consent\""));

    let (staff, _) = app
        .signed_in_as(crate::support::Role::Staff, "staff@example.com")
        .await;
    let member = app.user_by_email("consent@example.com").expect("user");
    let detail = staff
        .get(&app.url(&format!("/admin/users/{}/", member.id)))
        .await;
    assert!(detail.body.contains("data-consent=\"account_email\""));

    // Answers are reused for a while: views do not each call Kakao.
    let asked = app.kakao.standin.hits(Endpoint::Scopes);
    browser.get(&app.url("/profile/")).await;
    assert_eq!(app.kakao.standin.hits(Endpoint::Scopes), asked);

    app.kakao
        .standin
        .set_fault(Endpoint::Scopes, Some(Fault::Status(500)));
    let (browser, _) = app.signed_in("장애", "down@example.com").await;
    let profile = browser.get(&app.url("/profile/")).await;
    assert_eq!(profile.status, 200);
    assert!(profile.body.contains("data-consent-unavailable=\"1\""));
    let down = app.user_by_email("down@example.com").expect("user");
    let detail = staff
        .get(&app.url(&format!("/admin/users/{}/", down.id)))
        .await;
    assert_eq!(detail.status, 200);
    assert!(detail.body.contains("data-consent-unavailable=\"1\""));
    // A failure is not remembered: Kakao back, the items are back.
    app.kakao.standin.set_fault(Endpoint::Scopes, None);
    let profile = browser.get(&app.url("/profile/")).await;
    assert!(profile.body.contains("data-consent=\"account_email\""));

    // Without an admin key there is nothing to show, and Kakao is not asked.
    let quiet = TestApp::spawn_with(&[("kakao_admin_key", " ")]).await;
    let (browser, _) = quiet.signed_in("키없음", "nokey@example.com").await;
    let profile = browser.get(&quiet.url("/profile/")).await;
    assert!(!profile.body.contains("data-testid=\"consents\""));
    assert_eq!(quiet.kakao.standin.hits(Endpoint::Scopes), 0);
}

/// The token endpoint's KOE codes: a Korean page that names the code, and for our own
/// misconfiguration the operator's page (no retry button).
#[actix_web::test]
async fn koe_codes_get_their_own_pages() {
    let app = TestApp::spawn().await;
    let kakao_id = app.kakao_user("코드", "koe@example.com");
    for (koe, error, status, code) in [
        ("KOE101", "invalid_client", 502, "kakao_misconfigured"),
        ("KOE010", "invalid_client", 502, "kakao_misconfigured"),
        ("KOE303", "invalid_grant", 502, "kakao_misconfigured"),
        ("KOE320", "invalid_grant", 400, "kakao_rejected"),
    ] {
        app.kakao.standin.fail_next(
            Endpoint::Token,
            Fault::KauthError {
                status: 400,
                error: error.into(),
                error_code: koe.into(),
            },
            1,
        );
        let done = app.login_agreeing(&app.browser(), kakao_id, None).await;
        assert_eq!(done.status, status, "{koe}: {}", done.body);
        assert_eq!(done.error_code().as_deref(), Some(code), "{koe}");
        assert!(done.body.contains(koe), "{koe}: the page names the code");
    }
    assert!(app.users().is_empty());
}
