//! The web page in headless Chromium against a local stack of its own: sign-in through the
//! stack's provider (authorization code with PKCE), a request with a hostile reason, a review,
//! credentials the emulator's STS accepts, a console link, revocation and the audit export,
//! with screenshots of each page under `<target>/screenshots/`.

use jit_core::domain::{GrantId, Service};
use jit_core::trust::{
    AuditExport, Checkpoint, LocalKeys, author_of, checkpoint_message, period_digest,
    record_message, verify_export,
};
use jit_e2e::browser::Browser;
use jit_e2e::{options, start};
use serde_json::json;

/// A reason that would run script, or load an image with a handler, if the page ever put
/// text into HTML.
const HOSTILE: &str =
    "<script>window.__pwned=1</script> \"><img src=x onerror=\"window.__pwned=2\"> checking";

async fn sign_in(b: &Browser, who: &str) {
    let button = b.find("#sign-in").await.unwrap();
    b.click(&button).await.unwrap();
    // The provider's page: pick the demo person.
    let person = b.find_text("a", &format!("{who} (")).await.unwrap();
    b.click(&person).await.unwrap();
    b.find_text("#who", who).await.unwrap();
    // The code and state are gone from the address bar at once.
    let url = b.url().await.unwrap();
    assert!(!url.contains("code=") && !url.contains("state="), "{url}");
}

async fn sign_out(b: &Browser) {
    let button = b.find_text("button", "Sign out").await.unwrap();
    b.click(&button).await.unwrap();
    b.find("#sign-in").await.unwrap();
}

async fn nav(b: &Browser, label: &str) {
    let link = b.find_text("#nav a", label).await.unwrap();
    b.click(&link).await.unwrap();
}

#[tokio::test]
async fn the_web_page_takes_a_request_from_asking_to_approval_credentials_and_revocation() {
    // A sweep every 5 s, so alice's grant's activity is covered soon after its end (40 s).
    let mut opts = options("browser");
    opts.sweep_every = Some(std::time::Duration::from_secs(5));
    let stack = start(opts).unwrap();
    let shots = jit_local::target_dir().join("screenshots");
    let b = Browser::start(shots.clone()).await.unwrap();
    let home = format!("{}/", stack.api_url);
    signed_out(&b, &home).await;
    let id = alice_asks(&b).await;
    bob_approves(&b, &id).await;
    alice_uses_it(&b, &stack, &id).await;
    alice_extends_it(&b).await;
    alice_revokes_it(&b).await;
    alice_schedules_one_and_cancels_it(&b).await;
    the_pages_verifier_refuses_a_changed_trail(&b, &stack, &id).await;
    nothing_ran_and_nothing_was_kept(&b).await;
    sue_audits(&b, &stack, &id).await;
    sue_opens_a_link_from_slack(&b, &stack).await;
    the_content_policy_holds(&b).await;
    eprintln!("screenshots in {}", shots.display());
    b.quit().await;
}

/// Signed out: focus starts on the page's heading (a screen reader announces it), and the
/// keyboard goes from there to the sign-in button.
async fn signed_out(b: &Browser, home: &str) {
    b.goto(home).await.unwrap();
    b.find("#sign-in").await.unwrap();
    b.screenshot("01-signed-out").await.unwrap();
    assert_eq!(b.keys("\u{E004}").await.unwrap(), "sign-in");
}

/// alice asks for read-only logs without a ticket (the rules want one approval), with a
/// reason that tries to run script; the request's id.
async fn alice_asks(b: &Browser) -> String {
    sign_in(b, "alice").await;
    b.wait_text("My requests").await.unwrap();
    nav(b, "Ask for access").await;
    let target = b
        .find("#target option[value='prod-logs-ro']")
        .await
        .unwrap();
    b.click(&target).await.unwrap();
    let hour = b.find("#duration option[value='1h']").await.unwrap();
    b.click(&hour).await.unwrap();
    // The form says which fields are which, to a screen reader too.
    for id in ["target", "duration", "reason", "ticket", "break-glass"] {
        let label = b.find(&format!("label[for='{id}']")).await.unwrap();
        assert!(
            !b.text(&label).await.unwrap().is_empty(),
            "{id} has no label"
        );
    }
    let glass = b.find("#break-glass").await.unwrap();
    b.click(&glass).await.unwrap();
    b.wait_text("Use it only in an emergency").await.unwrap();
    b.click(&glass).await.unwrap();
    let reason = b.find("#reason").await.unwrap();
    b.type_into(&reason, HOSTILE).await.unwrap();
    b.screenshot("02-request-form").await.unwrap();
    let submit = b.find_text("button", "Ask for access").await.unwrap();
    b.click(&submit).await.unwrap();
    b.wait_text("Audit trail").await.unwrap();
    b.wait_text("PENDING").await.unwrap();
    let shown = b.find("dd.reason").await.unwrap();
    assert_eq!(b.text(&shown).await.unwrap(), HOSTILE);
    let url = b.url().await.unwrap();
    b.screenshot("03-grant-pending").await.unwrap();
    url.rsplit('/').next().unwrap().to_owned()
}

/// bob (sre) sees it to review, with the reason as text, and approves.
async fn bob_approves(b: &Browser, id: &str) {
    sign_out(b).await;
    sign_in(b, "bob").await;
    nav(b, "To review").await;
    b.wait_text("alice asks for prod-logs-ro").await.unwrap();
    let page = b.wait_text("What the rules said").await.unwrap();
    assert!(page.contains(HOSTILE), "{page}");
    assert!(page.contains("needs 1 approval"), "{page}");
    // Why the rules did not approve it at once, as their decision recorded it.
    assert!(
        page.contains("No rule approves this at once; needs"),
        "{page}"
    );
    // The target asks who is on call; alice is not in the mapping, and the card says so.
    assert!(
        page.contains(
            "On call: the requester is not in targets.json's on_call.people; not on call."
        ),
        "{page}"
    );
    b.screenshot("04-review").await.unwrap();
    let comment = b.find(&format!("#comment-{id}")).await.unwrap();
    b.type_into(&comment, "looks right").await.unwrap();
    let approve = b.find_text("button", "Approve").await.unwrap();
    b.click(&approve).await.unwrap();
    b.wait_text("Approved prod-logs-ro for alice: now ACTIVE")
        .await
        .unwrap();
}

/// alice sees it active, with time left counting down; its page verifies the trail, shows
/// credentials only when asked for (and they work against STS), and gives a console link.
async fn alice_uses_it(b: &Browser, stack: &jit_stack::Stack, id: &str) {
    sign_out(b).await;
    sign_in(b, "alice").await;
    b.wait_text("Active grants").await.unwrap();
    let countdown = b.find(".countdown").await.unwrap();
    let first = b.text(&countdown).await.unwrap();
    assert!(first.ends_with("left"), "{first}");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_ne!(
        b.text(&countdown).await.unwrap(),
        first,
        "the countdown is live"
    );
    b.screenshot("05-my-requests").await.unwrap();

    // Its page: the trail verified in the page, credentials only when asked for, and they
    // work against STS.
    let link = b.find_text("table a", "prod-logs-ro").await.unwrap();
    b.click(&link).await.unwrap();
    let check = b.find("#trail-check").await.unwrap();
    let verdict = b.text(&check).await.unwrap();
    assert!(verdict.starts_with("Verified: 3 records"), "{verdict}");
    assert!(
        b.page_text()
            .await
            .unwrap()
            .contains(&format!("credential_process = jit credentials {id}"))
    );
    let reveal = b.find_text("button", "Show credentials").await.unwrap();
    b.click(&reveal).await.unwrap();
    let secret = b.find("#credentials").await.unwrap();
    let text = b.text(&secret).await.unwrap();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap_or_else(|| panic!("{name} not shown: {text}"))
            .to_owned()
    };
    let credentials = jit_api::Credentials {
        version: 1,
        access_key_id: value("AWS_ACCESS_KEY_ID"),
        secret_access_key: value("AWS_SECRET_ACCESS_KEY"),
        session_token: value("AWS_SESSION_TOKEN"),
        expiration: String::new(),
    };
    let sts = jit_stack::demo::session_client(&stack.aws, &credentials);
    let arn = sts.get_caller_identity().send().await.unwrap().arn.unwrap();
    assert!(arn.contains(":assumed-role/prod-logs-ro/alice@"), "{arn}");
    // A call through the stack's AWS endpoint: the grant's page lists it once it is delivered.
    aws_sdk_dynamodb::Client::new(&jit_stack::demo::session_config(stack, &credentials))
        .list_tables()
        .send()
        .await
        .unwrap();
    b.screenshot("06-grant-credentials").await.unwrap();
    let hide = b.find_text("button", "Hide credentials").await.unwrap();
    b.click(&hide).await.unwrap();
    let gone = b
        .script(
            "return document.getElementById('credentials') === null;",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(gone, true);
    let console = b.find_text("button", "Console sign-in link").await.unwrap();
    b.click(&console).await.unwrap();
    let console_link = b.find("#console-link").await.unwrap();
    let href = b.attribute(&console_link, "href").await.unwrap().unwrap();
    assert!(href.contains("SigninToken="), "{href}");
    assert_eq!(
        b.attribute(&console_link, "rel").await.unwrap().as_deref(),
        Some("noopener noreferrer")
    );
}

/// alice needs more time: half an hour more, which the example rules give an engineer's
/// read-only grant at once; the page shows the new end and the EXTENDED record.
async fn alice_extends_it(b: &Browser) {
    let before = b.text_of("dl.grant").await.unwrap();
    let label = b.find("label[for='extend-reason']").await.unwrap();
    assert_eq!(b.text(&label).await.unwrap(), "Why");
    let half = b.find("#extend-by option[value='30m']").await.unwrap();
    b.click(&half).await.unwrap();
    let why = b.find("#extend-reason").await.unwrap();
    b.type_into(&why, "still reading the incident's logs")
        .await
        .unwrap();
    let extend = b.find("#extend").await.unwrap();
    b.click(&extend).await.unwrap();
    b.wait_text("Extended: it now ends").await.unwrap();
    b.wait_text("EXTENDED").await.unwrap();
    let after = b.text_of("dl.grant").await.unwrap();
    assert_ne!(before, after, "the end shown moved");
    let verdict = b.text_of("#trail-check").await.unwrap();
    assert!(verdict.starts_with("Verified: 6 records"), "{verdict}");
}

/// alice asks for tomorrow: granted at once by the rules, yet the page offers no credentials,
/// says when it opens, and lets her cancel it before then.
async fn alice_schedules_one_and_cancels_it(b: &Browser) {
    nav(b, "Ask for access").await;
    let target = b
        .find("#target option[value='prod-logs-ro']")
        .await
        .unwrap();
    b.click(&target).await.unwrap();
    let half = b.find("#duration option[value='30m']").await.unwrap();
    b.click(&half).await.unwrap();
    let label = b.find("label[for='starts-at']").await.unwrap();
    assert_eq!(b.text(&label).await.unwrap(), "Start later (optional)");
    // Tomorrow at this minute, in the browser's own time zone.
    b.script(
        "const d = new Date(Date.now() + 86400000), p = (n) => String(n).padStart(2, '0');
         document.getElementById('starts-at').value =
           `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;",
        json!([]),
    )
    .await
    .unwrap();
    let reason = b.find("#reason").await.unwrap();
    b.type_into(&reason, "tomorrow's error-rate review")
        .await
        .unwrap();
    // Sent from the keyboard: Enter in the last field.
    let ticket = b.find("#ticket").await.unwrap();
    b.type_into(&ticket, "INC-9\u{E007}").await.unwrap();
    b.wait_text("Audit trail").await.unwrap();
    let url = b.url().await.unwrap();
    let id = url.rsplit('/').next().unwrap().to_owned();
    // The rules grant it in a moment; the page shows it once it is looked at again.
    let mut page = String::new();
    for _ in 0..30 {
        page = b.page_text().await.unwrap();
        if page.contains("Granted: access opens") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        nav(b, "My requests").await;
        let link = b.find(&format!("a[href='#/grant/{id}']")).await.unwrap();
        b.click(&link).await.unwrap();
        b.wait_text("Audit trail").await.unwrap();
    }
    assert!(page.contains("Granted: access opens"), "{page}");
    assert!(page.contains("Opens"), "{page}");
    assert!(
        !page.contains("Show credentials"),
        "no credentials before it opens: {page}"
    );
    b.screenshot("07b-grant-scheduled").await.unwrap();
    let cancel = b.find("#cancel").await.unwrap();
    assert_eq!(b.text(&cancel).await.unwrap(), "Cancel before it opens");
    b.click(&cancel).await.unwrap();
    b.wait_text("CANCELLED").await.unwrap();
    let verdict = b.text_of("#trail-check").await.unwrap();
    assert!(verdict.starts_with("Verified: 3 records"), "{verdict}");
}

/// alice revokes it from the page; the trail still verifies.
async fn alice_revokes_it(b: &Browser) {
    let why = b.find("#revoke-reason").await.unwrap();
    b.type_into(&why, "done with the investigation")
        .await
        .unwrap();
    let revoke = b.find_text("button", "Revoke").await.unwrap();
    b.click(&revoke).await.unwrap();
    b.wait_text("REVOKED").await.unwrap();
    let verdict = b.text_of("#trail-check").await.unwrap();
    assert!(verdict.starts_with("Verified: 7 records"), "{verdict}");
    // The page lists what the grant's session did, from CloudTrail.
    let activity = b.text_of("#activity").await.unwrap();
    assert!(
        activity.contains("dynamodb")
            && activity.contains("ListTables")
            && activity.contains("read"),
        "{activity}"
    );
    let note = b.text_of("#activity-note").await.unwrap();
    assert!(note.starts_with("1 of 1 calls shown"), "{note}");
    // Checked in the page against what covers it: nothing yet, so the call waits, unbroken.
    let check = b.text_of("#activity-check").await.unwrap();
    assert!(
        check.starts_with("Covered: 0 events by 0 signed records; 1 not yet covered"),
        "{check}"
    );
    b.screenshot("07-grant-revoked").await.unwrap();
}

/// The page's verifier is the one that said "Verified": the same trail with one detail
/// edited, a record dropped, or a signature moved to a record its signer does not write is
/// refused, each with its reason.
async fn the_pages_verifier_refuses_a_changed_trail(
    b: &Browser,
    stack: &jit_stack::Stack,
    id: &str,
) {
    let alice = stack.token("alice", &["engineers", "sre"]);
    let trail = jit_stack::demo::Api::new(&stack.api_url)
        .call("GET", &format!("/requests/{id}/audit"), Some(&alice), None)
        .await
        .unwrap();
    assert_eq!(trail.status, 200, "{}", trail.body);
    let verdicts = b
        .script_async(
            "const trail = arguments[0], done = arguments[arguments.length - 1];
             import('/web/verify.js').then(async (m) => {
               const edited = structuredClone(trail);
               edited.records[1].detail.approvals_required = '0';
               const dropped = structuredClone(trail);
               dropped.records.splice(2, 1);
               const moved = structuredClone(trail);
               moved.records[0].signature = moved.records[1].signature;
               done([await m.verifyTrail(trail), await m.verifyTrail(edited),
                     await m.verifyTrail(dropped), await m.verifyTrail(moved)]);
             }).catch((e) => done(['the verifier did not load: ' + e]));",
            json!([trail.body]),
        )
        .await
        .unwrap();
    assert_eq!(verdicts[0], serde_json::Value::Null, "{verdicts}");
    for (i, reason) in [
        (1, "record 2 was altered"),
        (2, "expected record 3 but found record 4"),
        (3, "only the intake function writes it"),
    ] {
        let said = verdicts[i].as_str().unwrap_or_default();
        assert!(said.contains(reason), "case {i}: {verdicts}");
    }

    // Its activity check computes the hashes and digest the core does (the values an
    // independent Python implementation gave), holds a covering record to them, and refuses a
    // deleted event while a late one only waits.
    let events = json!([
        {"event_id": "ev-1", "kind": "api_call", "time": 1_800_000_000_i64, "account": "222222222222",
         "region": "eu-west-1", "service": "s3.amazonaws.com", "action": "GetObject",
         "read_only": true, "error_code": null, "resources": ["arn:aws:s3:::prod-logs"],
         "resources_dropped": 0, "source_ip": "203.0.113.7", "user_agent": "aws-cli/2",
         "stored_at": 1_800_000_100_i64},
        {"event_id": "ev-0", "kind": "console_sign_in", "time": 1_800_000_060_i64,
         "account": "222222222222", "region": "us-east-1", "service": "signin.amazonaws.com",
         "action": "ConsoleLogin", "read_only": null, "error_code": "Failed authentication",
         "resources": [], "resources_dropped": 0, "source_ip": null, "user_agent": null,
         "stored_at": 1_800_000_100_i64}
    ]);
    let record = json!({"seq": 7, "action": "ACTIVITY_COVERED", "detail": {
        "activity_count": "2",
        "activity_digest": "a626de65c9b46384b748b247e4fcf3b3eee8e79ed1eb3454e556a4b22c820814",
        "activity_through": "2027-01-15T09:00:00Z"}});
    let checked = b
        .script_async(
            "const [events, record] = arguments, done = arguments[arguments.length - 1];
             import('/web/verify.js').then(async (m) => {
               const late = structuredClone(events[0]);
               late.event_id = 'ev-late';
               late.stored_at = 1800009999;
               done([await m.activityHash(events[0]), await m.activityHash(events[1]),
                     await m.activityDigest(events),
                     await m.verifyActivity([record], events),
                     await m.verifyActivity([record], [events[1]]),
                     await m.verifyActivity([record], [...events, late])]);
             }).catch((e) => done(['the verifier did not load: ' + e]));",
            json!([events, record]),
        )
        .await
        .unwrap();
    assert_eq!(
        checked[0],
        "ac741365353b154092c09581e42aacfb9d20a9d26f843414ea22c1a8f90cc841"
    );
    assert_eq!(
        checked[1],
        "3f880a0095b86cbc4e50c6cb80f3104eb485c9389ccb28de085ffbe33c5e1c56"
    );
    assert_eq!(
        checked[2],
        json!({"count": 2, "digest": "a626de65c9b46384b748b247e4fcf3b3eee8e79ed1eb3454e556a4b22c820814"})
    );
    assert_eq!(
        checked[3],
        json!({"problem": null, "records": 1, "covered": 2, "notYetCovered": 0})
    );
    let deleted = checked[4]["problem"].as_str().unwrap_or_default();
    assert!(deleted.contains("the activity holds 1"), "{checked}");
    assert_eq!(checked[5]["notYetCovered"], 1, "{checked}");
    assert_eq!(checked[5]["problem"], serde_json::Value::Null, "{checked}");
}

/// Nothing ran from the reason, and nothing sign-in related was left in storage.
async fn nothing_ran_and_nothing_was_kept(b: &Browser) {
    let storage = b
        .script(
            "return {pwned: window.__pwned === undefined ? null : window.__pwned, \
             local: localStorage.length, session: sessionStorage.length, \
             images: document.querySelectorAll('main img').length};",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(
        storage,
        json!({"pwned": null, "local": 0, "session": 0, "images": 0})
    );
}

/// sue, an auditor, exports today's trail and the page verifies it, with the activity of the
/// grants it covers (alice's call, once the sweeper has signed what covers it); then saved
/// exports, checked by the page against the keys the deployment serves: as made, and
/// tampered, shortened, re-signed with other keys, with checkpoints missing, or with an
/// activity event deleted.
async fn sue_audits(b: &Browser, stack: &jit_stack::Stack, id: &str) {
    covered(stack, id).await;
    sign_out(b).await;
    sign_in(b, "sue").await;
    nav(b, "Audit").await;
    let export = b.find_text("button", "Export and verify").await.unwrap();
    b.click(&export).await.unwrap();
    let verdict = b.text_of("#audit-check").await.unwrap();
    assert!(verdict.starts_with("Verified: "), "{verdict}");
    assert!(
        verdict.contains("1 event covered by signed records, 0 not yet covered"),
        "{verdict}"
    );
    assert!(!verdict.contains("unchecked"), "{verdict}");
    // The report of the verified export: alice's grant is a row, revoked by her, with its
    // call; nothing in the range is an exception.
    let grants = b.text_of("#report-grants").await.unwrap();
    let alices = grants
        .lines()
        .find(|l| l.contains(id))
        .unwrap_or_else(|| panic!("no row for {id}: {grants}"));
    assert!(
        alices.contains("REVOKED") && alices.contains("user:alice"),
        "{alices}"
    );
    let exceptions = b.text_of("#report-exceptions").await.unwrap();
    assert!(!exceptions.contains("revoked_by_guardrail"), "{exceptions}");
    b.screenshot("08-audit").await.unwrap();

    // Saved exports, checked by the page against the keys the deployment serves: as made, and
    // tampered, shortened, re-signed with other keys, or with checkpoints missing.
    check_saved_exports(b, stack, id).await;
}

/// Sue links her Slack user on the page with the code `/jit link` gave her. A click in Slack on
/// a target that needs a fresh sign-in is answered with a link: the page signs her in again
/// for it and shows that request's review card, once.
async fn sue_opens_a_link_from_slack(b: &Browser, stack: &jit_stack::Stack) {
    let api = jit_e2e::Api::new(&stack.api_url);
    let slack = stack.slack();
    let interactions = format!("{}/slack/interactions", stack.api_url);
    let code = stack.slack_link_code("U0SUEWEB").await.unwrap();
    nav(b, "To review").await;
    let field = b.find("#slack-code").await.unwrap();
    b.type_into(&field, "NOT-A-CODE").await.unwrap();
    let button = b.find_text("button", "Link my Slack user").await.unwrap();
    b.click(&button).await.unwrap();
    b.wait_text("no such link code").await.unwrap();
    b.script(
        "document.getElementById('slack-code').value = '';",
        json!([]),
    )
    .await
    .unwrap();
    b.type_into(&field, &code).await.unwrap();
    b.click(&button).await.unwrap();
    b.wait_text("Linked: Slack user U0SUEWEB").await.unwrap();
    let bob = stack.token("bob", &["sre", "oncall"]);
    let asked = api
        .as_user(&bob)
        .create_request(&jit_api::CreateRequest {
            target: "break-glass-admin".into(),
            duration: jit_api::DurationInput::Text("30m".into()),
            reason: "browser test: reviewed from a Slack link".into(),
            ticket: Some("INC-77".into()),
            break_glass: false,
            starts_at: None,
        })
        .await
        .unwrap();
    let id = asked.id.clone();
    api.wait_looked_at(&id, &bob).await.unwrap();
    let click = slack.click("U0SUEWEB", &slack.team_id, "jit_approve", &id);
    let (_, answer) = jit_local::slack::post_form(&interactions, &click)
        .await
        .unwrap();
    let link = answer
        .split(' ')
        .find(|w| w.contains("/#/slack/"))
        .unwrap_or_else(|| panic!("no link: {answer}"))
        .to_owned();

    // Signed in already, she is signed in again for the link; then the request alone.
    b.goto(&link).await.unwrap();
    let person = b.find_text("a", "sue (").await.unwrap();
    b.click(&person).await.unwrap();
    let page = b.wait_text("bob asks for break-glass-admin").await.unwrap();
    assert!(page.contains("INC-77"), "{page}");
    assert!(
        page.contains("Everything waiting for your review"),
        "{page}"
    );
    let url = b.url().await.unwrap();
    assert!(url.ends_with(&format!("#/review/{id}")), "{url}");
    b.screenshot("09-from-slack").await.unwrap();
    // The link opens once (the page's sign-in was made for it, so it asks the API at once).
    b.goto(&link).await.unwrap();
    let page = b.wait_text("opened already").await.unwrap();
    assert!(page.contains("click the button in Slack again"), "{page}");
    api.as_user(&bob).cancel(&id).await.unwrap();
}

/// Waits (up to 200 s) until the sweeper has signed what covers grant `id`'s activity (the
/// local stack: 40 s after its end).
async fn covered(stack: &jit_stack::Stack, id: &str) {
    let api = jit_e2e::Api::new(&stack.api_url);
    let sue = stack.token("sue-waits", &["security"]);
    for _ in 0..100 {
        let trail = api.as_user(&sue).request_trail(id).await.unwrap();
        if trail
            .records
            .iter()
            .any(|r| r.record.action == jit_core::domain::audit::AuditAction::ActivityCovered)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    panic!("grant {id}'s activity was not covered within 200 s");
}

/// The strict policy never had to refuse anything the page itself does, and it does refuse
/// an inline script, as it would one smuggled into the page.
async fn the_content_policy_holds(b: &Browser) {
    let errors = b.console_errors().await.unwrap();
    assert!(
        !errors.iter().any(|e| e.contains("Content Security Policy")),
        "{errors:?}"
    );
    let ran = b
        .script(
            "const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; \
             document.head.append(s); return window.__inline === 1;",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(ran, false, "an inline script ran");
    let errors = b.console_errors().await.unwrap();
    assert!(
        errors.iter().any(|e| e.contains("Content Security Policy")),
        "{errors:?}"
    );
}

/// An export of the two hours around now once a checkpointed minute holding records is due
/// (its checkpoint must be in every export made after), and that checkpoint's position.
async fn export_with_a_due_checkpoint(api: &jit_e2e::Api, auditor: &str) -> (AuditExport, usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let export = super::exported(api, auditor).await;
        let period = export.checkpoint_period.unwrap();
        let at = export.exported_at.unwrap();
        let mut checkpoints = export.checkpoints.clone();
        checkpoints.sort_by_key(|c| c.seq);
        let due = checkpoints.iter().position(|c| {
            c.count > 0
                && period.signed_until(at) >= c.period_end
                && Some(c.period_start) >= export.from
        });
        if let Some(i) = due {
            let mut export = export;
            export.checkpoints = checkpoints;
            return (export, i);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpointed minute with records came due: {:?}",
            export.checkpoints
        );
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

/// The same export with every record and checkpoint re-hashed, re-chained and re-signed with
/// `keys`, which it then carries: what someone rewriting the trail would hand over.
fn resigned(export: &AuditExport, keys: &LocalKeys) -> AuditExport {
    let mut out = export.clone();
    out.records.sort_by_key(|r| (r.grant_id.clone(), r.seq));
    let mut last: std::collections::BTreeMap<GrantId, (u64, String)> = Default::default();
    for r in &mut out.records {
        if let Some((seq, hash)) = last.get(&r.grant_id)
            && *seq + 1 == r.seq
        {
            r.prev_hash = hash.clone();
        }
        r.hash = r.compute_hash();
        r.signature = Some(
            keys.key(author_of(r.action))
                .sign_as(&record_message(&r.hash)),
        );
        last.insert(r.grant_id.clone(), (r.seq, r.hash.clone()));
    }
    for h in &mut out.heads {
        if let Some((seq, hash)) = last.get(&h.grant_id)
            && *seq == h.head.seq
        {
            h.head.hash = hash.clone();
        }
    }
    let mut prev: Option<Checkpoint> = None;
    for c in &mut out.checkpoints {
        let inside = out.from.is_none_or(|f| f <= c.period_start)
            && out.to.is_none_or(|t| c.period_end <= t);
        if inside {
            let held = out
                .records
                .iter()
                .filter(|r| c.period_start <= r.at && r.at < c.period_end);
            (c.count, c.digest) = period_digest(held);
        }
        if let Some(p) = &prev {
            c.prev_hash = p.hash.clone();
        }
        c.hash = c.compute_hash();
        c.signature = Some(
            keys.key(Service::Sweeper)
                .sign_as(&checkpoint_message(&c.hash)),
        );
        prev = Some(c.clone());
    }
    out.keys = keys.ring().public_keys();
    out
}

async fn check_saved_exports(b: &Browser, stack: &jit_stack::Stack, id: &str) {
    let api = jit_e2e::Api::new(&stack.api_url);
    let sue = stack.token("sue-files", &["security"]);
    let (mut export, due) = export_with_a_due_checkpoint(&api, &sue).await;
    // With alice's grant's activity, as `jit audit export` carries it.
    let grant = GrantId::parse(id).unwrap();
    let page = api
        .as_user(&sue)
        .request_activity(id, 100, None)
        .await
        .unwrap();
    let events: Vec<_> = page.items.into_iter().map(|a| a.activity).collect();
    assert_eq!(events.len(), 1);
    export.activity.insert(grant.clone(), events);
    let cut = export.checkpoints[due].clone();
    let now = || {
        jit_core::clock::Timestamp::from_unix_seconds(
            time::OffsetDateTime::now_utc().unix_timestamp(),
        )
    };

    let mut tampered = export.clone();
    let record = tampered
        .records
        .iter_mut()
        .find(|r| r.detail.contains_key("reason"))
        .unwrap();
    record
        .detail
        .insert("reason".to_owned(), "nothing to see here".to_owned());

    // Cut at the due minute: its records gone, its checkpoint kept.
    let mut shortened = export.clone();
    shortened.records.retain(|r| r.at < cut.period_start);

    let forged = resigned(&tampered, &LocalKeys::generate());
    // Trusting the keys a file carries, the forgery passes: why the page pins the deployment's.
    verify_export(&forged, None, now()).expect("a consistent forgery verifies under its own keys");

    // The due checkpoint and every later one removed.
    let mut truncated = export.clone();
    truncated.checkpoints.truncate(due);
    // Only a checkpoint in the middle removed (the page once skipped the link check here).
    let mut gap = export.clone();
    assert!(gap.checkpoints.len() >= 3, "{:?}", gap.checkpoints);
    gap.checkpoints.remove(1);
    // alice's call deleted from what the export carries of her grant's activity.
    let mut deleted = export.clone();
    deleted.activity.insert(grant.clone(), Vec::new());

    let cases: Vec<(&str, AuditExport, &str)> = vec![
        (
            "as-made",
            export.clone(),
            "Verified against this deployment's keys",
        ),
        ("tampered", tampered, "was altered"),
        ("shortened", shortened, "audit records when checkpoint"),
        ("re-signed", forged, "not one of the functions' keys"),
        ("checkpoints-truncated", truncated, "has no checkpoint"),
        ("checkpoint-gap", gap, "checkpoints were removed"),
        ("activity-deleted", deleted, "signed 1 events stored up to"),
    ];
    let dir = jit_local::target_dir()
        .join("jit-e2e")
        .join("browser")
        .join("exports");
    std::fs::create_dir_all(&dir).unwrap();
    nav(b, "Audit").await;
    for (name, export, expected) in cases {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&export).unwrap()).unwrap();
        let input = b.find("#export-file").await.unwrap();
        b.type_into(&input, &path.display().to_string())
            .await
            .unwrap();
        let check = b.find_text("button", "Check the file").await.unwrap();
        // The click replaces the last file's verdict with "Checking…" before it returns.
        b.click(&check).await.unwrap();
        let verdict = loop {
            let text = b.text_of("#file-check").await.unwrap();
            if !text.is_empty() && text != "Checking…" {
                break text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert!(verdict.contains(expected), "{name}: {verdict}");
        if name == "as-made" {
            assert!(
                verdict.contains("1 event covered by signed records"),
                "{verdict}"
            );
        } else {
            assert!(
                verdict.starts_with("The file does not verify"),
                "{name}: {verdict}"
            );
        }
        // The page's verdict is the CLI's: the Rust verifier, with the keys pinned from KMS,
        // agrees on which files hold.
        let pinned = stack.key_ring().await.unwrap();
        assert_eq!(
            verify_export(&export, Some(&pinned), now()).is_ok(),
            name == "as-made",
            "{name}"
        );
        b.script(
            "document.getElementById('file-check').scrollIntoView(); return null;",
            json!([]),
        )
        .await
        .unwrap();
        b.screenshot(&format!("09-file-{name}")).await.unwrap();
    }
}
