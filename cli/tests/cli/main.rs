//! The `jit` binary end to end against the local stack: real tokens, the real function
//! binaries, KMS-signed records, and the real AWS CLI (from PyPI) reading `credential_process`.
//! The tests share one stack; only the session test makes grants, so its audit export sees
//! no other test's writes.
// Tests may unwrap and index: a panic is how a test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use std::sync::OnceLock;

use jit_e2e::Running;
use serde_json::{Value, json};

const JIT: &str = env!("CARGO_BIN_EXE_jit");

/// `jit args` with `env`, none of the caller's JIT_* settings, and config and cache
/// directories of the tests' own.
fn command(env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut command = Command::new(JIT);
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("JIT_") {
            command.env_remove(name);
        }
    }
    let home = jit_local::target_dir().join("jit-cli-tests");
    command
        .env("XDG_CONFIG_HOME", home.join("xdg-config"))
        .env("XDG_CACHE_HOME", home.join("xdg-cache"));
    command.envs(env.iter().copied());
    command
}

fn jit(env: &[(&str, &str)], args: &[&str]) -> Output {
    command(env, args).output().unwrap()
}

/// Runs `jit login` with `args` and acts as the person at the browser: follows the address it
/// prints (on the line holding `prefix`), picks `person` on the provider's page, and returns
/// `jit`'s exit code.
async fn sign_in(env: &[(&str, &str)], args: &[&str], prefix: &str, person: &str) -> i32 {
    use std::io::BufRead;
    let mut child = command(env, args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let prefix = prefix.to_owned();
    let (found, address) = tokio::sync::oneshot::channel();
    // Reads all of jit's stderr, so its last lines never meet a closed pipe.
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains(&prefix)
                && let Some(i) = line.find("http")
                && let Some(tx) = found.take()
            {
                let _ = tx.send(line[i..].trim_end_matches(')').to_owned());
            }
        }
    });
    let address = address.await.expect("jit login prints where to sign in");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser
        .get(&address)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let href = page
        .split("href=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().replace("&amp;", "&"))
        .find(|href| href.ends_with(&format!("person={person}")))
        .unwrap_or_else(|| panic!("no link for {person} in {page}"));
    let base = url::Url::parse(&address).unwrap();
    let picked = browser.get(base.join(&href).unwrap()).send().await.unwrap();
    if let Some(location) = picked.headers().get("location") {
        // The provider sends the browser back to jit's loopback address with the code.
        let back = browser
            .get(location.to_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(back.status(), 200);
    }
    tokio::task::spawn_blocking(move || child.wait().unwrap().code().unwrap_or(-1))
        .await
        .unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_str(stdout(out).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(out), stderr(out)))
}

/// `jit ls` with the token file `file`: refused as not signed in (exit 3), saying to sign in.
fn asks_to_sign_in(api: &str, file: &str) {
    let out = jit(&[("JIT_API_URL", api), ("JIT_TOKEN_FILE", file)], &["ls"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("jit login"), "{}", stderr(&out));
}

fn rfc3339(offset_secs: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The AWS CLI, installed (pinned) into a virtualenv of its own.
fn aws_cli() -> PathBuf {
    jit_local::ensure_venv("awscli-venv", "cli/tests/requirements-awscli.txt")
        .unwrap()
        .with_file_name("aws")
}

fn caller_identity(aws: &Path, config: &Path, endpoint: &str, env: &[(&str, &str)]) -> Value {
    let out = Command::new(aws)
        .args([
            "sts",
            "get-caller-identity",
            "--profile",
            "jit",
            "--output",
            "json",
        ])
        .args(["--endpoint-url", endpoint])
        .env("AWS_CONFIG_FILE", config)
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "aws: {}", stderr(&out));
    json_of(&out)
}

/// Where the tests keep files.
fn state_dir() -> PathBuf {
    let dir = jit_local::target_dir().join("jit-cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The stack every test of this binary shares, started on first use.
fn stack() -> &'static Running {
    static STACK: OnceLock<Result<Running, String>> = OnceLock::new();
    STACK
        .get_or_init(|| jit_e2e::start(jit_e2e::options("cli")))
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_stores_a_private_token_that_renews_once_and_signing_out_drops_sessions() {
    let stack = stack();
    let state_dir = state_dir();
    let api = stack.api_url.clone();

    // Sign in for real: alice by authorization code with PKCE through the "browser", sue
    // with a device code. Everything after uses the stored tokens.
    let alice_file = state_dir.join("alice-token.json").display().to_string();
    let sue_file = state_dir.join("sue-token.json").display().to_string();
    let _ = std::fs::remove_file(&alice_file);
    let _ = std::fs::remove_file(&sue_file);
    let signed = sign_in(
        &[("JIT_TOKEN_FILE", &alice_file)],
        &["login", "--issuer", &stack.issuer, "--no-open"],
        "http",
        "alice",
    )
    .await;
    assert_eq!(signed, 0, "jit login by PKCE");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&alice_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the stored token is private");
    }
    let signed = sign_in(
        &[("JIT_TOKEN_FILE", &sue_file)],
        &["login", "--issuer", &stack.issuer, "--no-browser"],
        "(or open",
        "sue",
    )
    .await;
    assert_eq!(signed, 0, "jit login by device code");

    // A stored token about to expire is renewed with its refresh token, without a sign-in;
    // a refresh token the provider does not know means signing in again.
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(&alice_file).unwrap()).unwrap();
    let mut expiring = stored.clone();
    expiring["expires_at"] = serde_json::json!(0);
    std::fs::write(&alice_file, expiring.to_string()).unwrap();
    let renewed = jit(
        &[("JIT_API_URL", &api), ("JIT_TOKEN_FILE", &alice_file)],
        &["ls"],
    );
    assert_eq!(code(&renewed), 0, "{}", stderr(&renewed));
    let after: Value =
        serde_json::from_str(&std::fs::read_to_string(&alice_file).unwrap()).unwrap();
    assert_ne!(
        after["refresh_token"], stored["refresh_token"],
        "refresh tokens rotate"
    );
    assert!(
        after["expires_at"].as_i64().unwrap() > time::OffsetDateTime::now_utc().unix_timestamp()
    );
    let mut unknown = after.clone();
    unknown["expires_at"] = serde_json::json!(0);
    unknown["refresh_token"] = serde_json::json!("not-one-the-provider-issued");
    let unknown_file = state_dir.join("unknown-token.json").display().to_string();
    std::fs::write(&unknown_file, unknown.to_string()).unwrap();
    asks_to_sign_in(&api, &unknown_file);
    // Two processes that find the token expiring at once (two `credential_process` calls of
    // one AWS command): one refresh, and both go on with the renewed token. Without a lock,
    // both would spend the same refresh token and the provider, which rotates them, would
    // refuse the second.
    for round in 0..3 {
        let mut expiring: Value =
            serde_json::from_str(&std::fs::read_to_string(&alice_file).unwrap()).unwrap();
        let before = expiring["refresh_token"].clone();
        expiring["expires_at"] = serde_json::json!(0);
        std::fs::write(&alice_file, expiring.to_string()).unwrap();
        let env = [
            ("JIT_API_URL", api.as_str()),
            ("JIT_TOKEN_FILE", alice_file.as_str()),
        ];
        let children: Vec<_> = (0..2)
            .map(|_| {
                command(&env, &["ls"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert_eq!(code(&out), 0, "round {round}: {}", stderr(&out));
        }
        let after: Value =
            serde_json::from_str(&std::fs::read_to_string(&alice_file).unwrap()).unwrap();
        assert_ne!(
            after["refresh_token"], before,
            "round {round}: renewed once"
        );
    }
    // The token file is private and a regular file: a wider mode is taken back, a link in
    // its place refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&alice_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let listed = jit(
            &[("JIT_API_URL", &api), ("JIT_TOKEN_FILE", &alice_file)],
            &["ls"],
        );
        assert_eq!(code(&listed), 0, "{}", stderr(&listed));
        let mode = std::fs::metadata(&alice_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the token's mode was taken back");
        let link = state_dir.join("linked-token.json");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&alice_file, &link).unwrap();
        let linked = jit(
            &[
                ("JIT_API_URL", &api),
                ("JIT_TOKEN_FILE", &link.display().to_string()),
            ],
            &["ls"],
        );
        assert_eq!(code(&linked), 2, "{}", stderr(&linked));
        assert!(
            stderr(&linked).contains("is a symbolic link"),
            "{}",
            stderr(&linked)
        );
    }
    // Signed out, nothing works until the next sign-in.
    // Signing out also drops the AWS sessions cached while signed in.
    let sue_cache = state_dir.join("sue-cache");
    std::fs::create_dir_all(&sue_cache).unwrap();
    std::fs::write(
        sue_cache.join("0190c0de-0000-7000-8000-000000000001.json"),
        "{}",
    )
    .unwrap();
    let logged_out = jit(
        &[
            ("JIT_TOKEN_FILE", &sue_file),
            ("JIT_CACHE_DIR", &sue_cache.display().to_string()),
        ],
        &["logout", "--output", "json"],
    );
    assert_eq!(code(&logged_out), 0);
    assert_eq!(json_of(&logged_out)["signed_in"], false);
    assert_eq!(
        std::fs::read_dir(&sue_cache).unwrap().count(),
        0,
        "cached sessions dropped"
    );
    asks_to_sign_in(&api, &sue_file);
    let signed = sign_in(
        &[("JIT_TOKEN_FILE", &sue_file)],
        &["login", "--issuer", &stack.issuer, "--no-browser"],
        "(or open",
        "sue",
    )
    .await;
    assert_eq!(signed, 0);
}

#[test]
fn completions_and_the_rules_offline_as_the_functions_load_them() {
    // Shell completions name the commands.
    let completions = jit(&[], &["completions", "bash"]);
    assert_eq!(code(&completions), 0);
    assert!(stdout(&completions).contains("credentials"));

    // What the rules say before asking, offline, on the rules the functions load.
    let dir = jit_local::workspace_root()
        .join("infra/policies")
        .display()
        .to_string();
    let explain = |user: &str, groups: &str, target: &str, extra: &[&str]| {
        let mut args = vec![
            "policy",
            "explain",
            "--user",
            user,
            "--groups",
            groups,
            "--target",
            target,
            "--for",
            "30m",
            "--at",
            "2027-01-13T10:00:00Z",
            "--output",
            "json",
            "--dir",
            &dir,
        ];
        args.extend_from_slice(extra);
        let out = jit(&[], &args);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        json_of(&out)
    };
    let auto = explain("alice", "sre", "prod-logs-ro", &["--ticket", "INC-7"]);
    assert_eq!(auto["outcome"], "auto-approved", "{auto}");
    let review = explain("erin", "engineers", "prod-logs-ro", &[]);
    assert_eq!(
        (
            review["outcome"].as_str(),
            review["approvals_required"].as_u64()
        ),
        (Some("needs-approval"), Some(1)),
        "{review}"
    );
    // On call at the first two levels: at once without a ticket; third in line, or on call
    // only for a window scheduled ahead, goes to reviewers as anyone would.
    for (extra, outcome) in [
        (&["--on-call-level", "1"][..], "auto-approved"),
        (&["--on-call-level", "3"][..], "needs-approval"),
        (
            &[
                "--on-call-level",
                "1",
                "--starts-at",
                "2027-01-13T12:00:00Z",
            ][..],
            "needs-approval",
        ),
    ] {
        let on_call = explain("olive", "sre", "prod-logs-ro", extra);
        assert_eq!(on_call["outcome"], outcome, "{extra:?}: {on_call}");
    }
    let refused = explain("dan", "dba", "prod-db-admin", &[]);
    assert_eq!(refused["outcome"], "refused", "{refused}");
    assert!(
        refused["why"].as_str().unwrap().contains("ticket"),
        "{refused}"
    );
    let checked = jit(&[], &["policy", "check", &dir]);
    assert_eq!(code(&checked), 0, "{}", stderr(&checked));
    // Placed as a deployment is: the broker in the example targets' own account refuses them,
    // naming file and line, unless the deployment opts in; a bad account id is a usage error.
    let placed = jit(
        &[],
        &["policy", "check", &dir, "--broker-account", "333333333333"],
    );
    assert_eq!(code(&placed), 2, "{}", stderr(&placed));
    assert!(
        stderr(&placed).contains(
            "target `prod-logs-ro` (targets.json:4): its role is in the broker's own account"
        ),
        "{}",
        stderr(&placed)
    );
    let opted_in = jit(
        &[],
        &[
            "policy",
            "check",
            &dir,
            "--broker-account",
            "333333333333",
            "--targets-in-broker-account",
        ],
    );
    assert_eq!(code(&opted_in), 0, "{}", stderr(&opted_in));
    let isolated = jit(
        &[],
        &["policy", "check", &dir, "--broker-account", "111111111111"],
    );
    assert_eq!(code(&isolated), 0, "{}", stderr(&isolated));
    let bad = jit(&[], &["policy", "check", &dir, "--broker-account", "12345"]);
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
    let empty = state_dir().join("no-rules");
    std::fs::create_dir_all(&empty).unwrap();
    let broken = jit(&[], &["policy", "check", &empty.display().to_string()]);
    assert_eq!(
        code(&broken),
        2,
        "a directory without rules: {}",
        stderr(&broken)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_from_request_to_revoke_with_the_aws_cli_and_the_audit_verified() {
    let stack = stack();
    let state_dir = state_dir();
    let aws = tokio::task::spawn_blocking(aws_cli).await.unwrap();
    let endpoint = stack.aws.endpoint_url().unwrap().to_owned();
    let cache = state_dir.join("cache");
    let _ = std::fs::remove_dir_all(&cache);
    let api = stack.api_url.clone();
    let cache_dir = cache.display().to_string();
    let alice = stack.token("alice", &["engineers", "sre"]);
    let auditor = stack.token("sue", &["security"]);
    let as_alice: Vec<(&str, &str)> = vec![
        ("JIT_API_URL", &api),
        ("JIT_TOKEN", &alice),
        ("JIT_CACHE_DIR", &cache_dir),
    ];

    // What alice may ask for.
    let targets = jit(&as_alice, &["targets", "--output", "json"]);
    assert_eq!(code(&targets), 0, "{}", stderr(&targets));
    assert!(
        json_of(&targets)["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "prod-logs-ro"),
        "{}",
        stdout(&targets)
    );

    // Ask and wait: the rules approve it at once.
    let asked = jit(
        &as_alice,
        &[
            "request",
            "prod-logs-ro",
            "--for",
            "30m",
            "--reason",
            "checking the error rates",
            "--ticket",
            "INC-7",
            "--wait",
            "--output",
            "json",
        ],
    );
    assert_eq!(code(&asked), 0, "{}", stderr(&asked));
    let grant = json_of(&asked);
    assert_eq!(grant["state"], "ACTIVE", "{grant}");
    let id = grant["id"].as_str().unwrap().to_owned();

    // The AWS CLI through `credential_process`, by target: the grant's role, twice; the second
    // time the API is unreachable, so it can only come from the cache.
    let config = state_dir.join("aws-config");
    std::fs::write(
        &config,
        format!("[profile jit]\nregion = us-east-1\ncredential_process = {JIT} credentials prod-logs-ro\n"),
    )
    .unwrap();
    let first = caller_identity(&aws, &config, &endpoint, &as_alice);
    let arn = first["Arn"].as_str().unwrap().to_owned();
    assert!(arn.contains(":assumed-role/prod-logs-ro/"), "{first}");
    let offline: Vec<(&str, &str)> = vec![
        ("JIT_API_URL", "http://127.0.0.1:9"),
        ("JIT_TOKEN", &alice),
        ("JIT_CACHE_DIR", &cache_dir),
    ];
    let second = caller_identity(&aws, &config, &endpoint, &offline);
    assert_eq!(second["Arn"].as_str(), Some(arn.as_str()));
    let entry = cache.join(format!("{id}.json"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&entry).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the cache file is private");
    }
    // With the cache off, the unreachable API is reported as such.
    let mut no_cache = offline.clone();
    no_cache.push(("JIT_NO_CACHE", "1"));
    let refused = jit(&no_cache, &["credentials", "prod-logs-ro"]);
    assert_eq!(code(&refused), 6, "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("cannot be reached"),
        "{}",
        stderr(&refused)
    );
    assert!(!stderr(&refused).contains("SecretAccessKey"));

    // Where credentials do exist, none of them reaches stderr: handed out from the cache, pulled
    // fresh when the cache cannot be written (a warning, and the session still delivered),
    // and with a torn cache entry holding them.
    let cached = jit(&as_alice, &["credentials", "prod-logs-ro"]);
    assert_eq!(code(&cached), 0, "{}", stderr(&cached));
    let issued = json_of(&cached);
    let secret = issued["SecretAccessKey"].as_str().unwrap().to_owned();
    let session_token = issued["SessionToken"].as_str().unwrap().to_owned();
    let unwritable = std::env::current_exe().unwrap().join("cache");
    let unwritable = unwritable.display().to_string();
    let mut no_place = as_alice.clone();
    no_place.retain(|(k, _)| *k != "JIT_CACHE_DIR");
    no_place.push(("JIT_CACHE_DIR", &unwritable));
    let uncached = jit(&no_place, &["credentials", "prod-logs-ro"]);
    assert_eq!(code(&uncached), 0, "{}", stderr(&uncached));
    assert!(
        stderr(&uncached).contains("was not cached"),
        "{}",
        stderr(&uncached)
    );
    let fresh = json_of(&uncached);
    assert_ne!(
        fresh["SecretAccessKey"], issued["SecretAccessKey"],
        "a new session"
    );
    let torn_dir = state_dir.join("torn-cache");
    std::fs::create_dir_all(&torn_dir).unwrap();
    let whole = serde_json::to_string(
        &json!({"grant": id, "target": "prod-logs-ro", "credentials": issued}),
    )
    .unwrap();
    std::fs::write(
        torn_dir.join(format!("{id}.json")),
        &whole[..whole.len() - 3],
    )
    .unwrap();
    let torn_dir = torn_dir.display().to_string();
    let mut torn = as_alice.clone();
    torn.retain(|(k, _)| *k != "JIT_CACHE_DIR");
    torn.push(("JIT_CACHE_DIR", &torn_dir));
    let mended = jit(&torn, &["credentials", id.as_str()]);
    assert_eq!(code(&mended), 0, "{}", stderr(&mended));
    let fresh_secret = fresh["SecretAccessKey"].as_str().unwrap().to_owned();
    for out in [&cached, &uncached, &mended, &refused] {
        for value in [&secret, &session_token, &fresh_secret] {
            assert!(
                !stderr(out).contains(value.as_str()),
                "a secret on stderr: {}",
                stderr(out)
            );
        }
        assert!(!stderr(out).contains("SecretAccessKey"), "{}", stderr(out));
    }

    // A command run with the session: it sees it, and its exit code comes back.
    let ran = jit(
        &as_alice,
        &[
            "exec",
            "prod-logs-ro",
            "--",
            "sh",
            "-c",
            "test -n \"$AWS_SESSION_TOKEN\" && test -n \"$AWS_ACCESS_KEY_ID\" && exit 7",
        ],
    );
    assert_eq!(code(&ran), 7, "{}", stderr(&ran));
    // The person's bearer token is not handed to the command.
    let with_token = as_alice.clone();
    let ran = jit(
        &with_token,
        &[
            "exec",
            "prod-logs-ro",
            "--",
            "sh",
            "-c",
            "test -z \"$JIT_TOKEN\" && exit 9",
        ],
    );
    assert_eq!(code(&ran), 9, "{}", stderr(&ran));

    // The AWS CLI, run with the session through the stack's AWS endpoint (the local
    // CloudTrail): its call is the grant's activity, as a table and as JSON lines.
    let aws_path = aws.display().to_string();
    let listed_tables = jit(
        &as_alice,
        &[
            "exec",
            "prod-logs-ro",
            "--",
            &aws_path,
            "dynamodb",
            "list-tables",
            "--region",
            "us-east-1",
            "--endpoint-url",
            &stack.aws_endpoint,
        ],
    );
    assert_eq!(code(&listed_tables), 0, "{}", stderr(&listed_tables));
    let mut events: Vec<Value> = Vec::new();
    for _ in 0..80 {
        let out = jit(&as_alice, &["activity", &id, "--output", "json"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        events = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if events.iter().any(|e| e["action"] == "ListTables") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let call = events
        .iter()
        .find(|e| e["action"] == "ListTables")
        .unwrap_or_else(|| panic!("the AWS CLI's call never showed: {events:?}"));
    assert_eq!(call["service"], "dynamodb.amazonaws.com");
    assert_eq!(call["read_only"], true);
    assert!(
        call["user_agent"].as_str().unwrap().contains("aws-cli/"),
        "{call}"
    );
    let table = jit(&as_alice, &["activity", &id]);
    assert_eq!(code(&table), 0, "{}", stderr(&table));
    let text = stdout(&table);
    assert!(text.starts_with("TIME "), "{text}");
    let row = text.lines().find(|l| l.contains("ListTables")).unwrap();
    assert!(row.contains("dynamodb") && row.contains("read"), "{row}");
    // Checked against the signed records covering it: none yet (the grant is live), so the
    // call is listed as not yet covered, and nothing is broken.
    let checked = jit(
        &as_alice,
        &["activity", &id, "--verify", "--output", "json"],
    );
    assert_eq!(code(&checked), 0, "{}", stderr(&checked));
    let summary = json_of(&checked);
    assert_eq!(summary["covering_records"], 0, "{summary}");
    assert!(
        summary["not_yet_covered"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == &call["event_id"]),
        "{summary}"
    );
    // Someone who may not see the grant is told there is none.
    let other = stack.token("olga", &["engineers"]);
    let hidden = jit(
        &[("JIT_API_URL", &api), ("JIT_TOKEN", &other)],
        &["activity", &id],
    );
    assert_eq!(code(&hidden), 4, "{}", stderr(&hidden));

    // Lists and reads.
    let listed = jit(&as_alice, &["ls", "--output", "json"]);
    assert_eq!(code(&listed), 0, "{}", stderr(&listed));
    assert!(
        json_of(&listed)["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == id.as_str())
    );
    // More time: half an hour at once (the rules extend an engineer's read-only grant that
    // much), then two hours more, which waits for a reviewer (more than the rules give at
    // once) while `--wait` waits for them.
    let ends = |out: &Output| json_of(out)["ends_at"].as_str().unwrap().to_owned();
    let first_end = grant["ends_at"].as_str().unwrap().to_owned();
    let extended = jit(
        &as_alice,
        &[
            "extend",
            &id,
            "--for",
            "30m",
            "--reason",
            "the error rates are still climbing",
            "--output",
            "json",
        ],
    );
    assert_eq!(code(&extended), 0, "{}", stderr(&extended));
    assert!(ends(&extended) > first_end, "{}", stdout(&extended));
    assert!(json_of(&extended).get("extension").is_none());
    let mut waiting = command(
        &as_alice,
        &[
            "extend",
            &id,
            "--for",
            "2h",
            "--reason",
            "the error rates are still climbing",
            "--wait",
            "--timeout",
            "90s",
            "--output",
            "json",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let bob = stack.token("bob", &["sre"]);
    let as_bob: Vec<(&str, &str)> = vec![("JIT_API_URL", &api), ("JIT_TOKEN", &bob)];
    let mut reviewable = String::new();
    for _ in 0..100 {
        let listed = jit(&as_bob, &["ls", "--reviewable", "--output", "json"]);
        reviewable = stdout(&listed);
        if reviewable.contains(&id) || waiting.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if !reviewable.contains("\"extension\"") {
        waiting.kill().ok();
        let out = waiting.wait_with_output().unwrap();
        panic!("{reviewable}\n{}\n{}", stdout(&out), stderr(&out));
    }
    let approved = jit(
        &as_bob,
        &["approve", &id, "--comment", "fine, the incident is open"],
    );
    assert_eq!(code(&approved), 0, "{}", stderr(&approved));
    let waited = tokio::task::spawn_blocking(move || waiting.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code(&waited), 0, "{}", stderr(&waited));
    assert!(ends(&waited) > ends(&extended), "{}", stdout(&waited));

    // Revoke: the cached session is dropped at once, and the target has no grant any more.
    let revoked = jit(
        &as_alice,
        &["revoke", &id, "--reason", "done with the error rates"],
    );
    assert_eq!(code(&revoked), 0, "{}", stderr(&revoked));
    assert!(!entry.exists(), "the revoked grant's session is forgotten");
    let none = jit(&as_alice, &["credentials", "prod-logs-ro"]);
    assert_eq!(code(&none), 8, "{}", stderr(&none));
    assert!(
        stderr(&none).contains("jit request prod-logs-ro"),
        "{}",
        stderr(&none)
    );

    // The audit, exported by an auditor and verified offline; one edited byte and one removed
    // line are each caught.
    let exported = jit(
        &[("JIT_API_URL", &api), ("JIT_TOKEN", &auditor)],
        &[
            "audit",
            "export",
            "--from",
            &rfc3339(-3600),
            "--to",
            &rfc3339(3600),
        ],
    );
    assert_eq!(code(&exported), 0, "{}", stderr(&exported));
    let text = stdout(&exported);
    let file = state_dir.join("audit.jsonl");
    std::fs::write(&file, &text).unwrap();
    let verified = jit(
        &[],
        &[
            "audit",
            "verify",
            &file.display().to_string(),
            "--output",
            "json",
        ],
    );
    assert_eq!(code(&verified), 0, "{}", stderr(&verified));
    assert!(json_of(&verified)["records"].as_u64().unwrap() >= 4);

    let edited = text.replacen("checking the error rates", "checking the error ratez", 1);
    assert_ne!(edited, text);
    std::fs::write(&file, &edited).unwrap();
    let caught = jit(&[], &["audit", "verify", &file.display().to_string()]);
    assert_eq!(code(&caught), 7, "{}", stdout(&caught));
    assert!(stderr(&caught).contains("altered"), "{}", stderr(&caught));

    let lines: Vec<&str> = text.lines().collect();
    let first_record = lines
        .iter()
        .position(|l| {
            l.contains("\"type\":\"record\"") && l.contains(&id) && l.contains("\"seq\":1,")
        })
        .unwrap();
    let removed: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != first_record)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(&file, removed).unwrap();
    let caught = jit(&[], &["audit", "verify", &file.display().to_string()]);
    assert_eq!(code(&caught), 7, "{}", stdout(&caught));
    assert!(
        stderr(&caught).contains("does not verify"),
        "{}",
        stderr(&caught)
    );

    // The auditor's report of the hour: dan's request, refused by the rules, writes nothing but
    // comes from intake's log as an exception; alice's grant is a row saying how it ended.
    let dan = stack.token("dan-report", &["dba"]);
    let refused = jit(
        &[("JIT_API_URL", &api), ("JIT_TOKEN", &dan)],
        &[
            "request",
            "prod-db-admin",
            "--for",
            "1h",
            "--reason",
            "rotating the credentials",
        ],
    );
    assert_eq!(code(&refused), 4, "{}", stderr(&refused));
    let intake_log = stack.state_dir.join("logs/intake.log");
    let (from, to) = (rfc3339(-3600), rfc3339(3600));
    let report = |extra: &[&str]| {
        let mut args = vec![
            "report",
            "--from",
            &from,
            "--to",
            &to,
            "--refused",
            intake_log.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        jit(&[("JIT_API_URL", &api), ("JIT_TOKEN", &auditor)], &args)
    };
    let mut json = Value::Null;
    for _ in 0..50 {
        let out = report(&["--output", "json"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        json = json_of(&out);
        if json["exceptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["who"] == "dan-report")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let refusal = json["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["who"] == "dan-report")
        .unwrap_or_else(|| panic!("no refusal of dan's: {json}"));
    assert_eq!(refusal["kind"], "refused_by_rules", "{refusal}");
    assert_eq!(refusal["target"], "prod-db-admin", "{refusal}");
    assert!(
        refusal["detail"]
            .as_str()
            .unwrap()
            .contains("admin-needs-a-ticket"),
        "{refusal}"
    );
    let row = json["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["grant_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no row for {id}: {json}"));
    assert_eq!(row["target"], "prod-logs-ro", "{row}");
    assert_eq!(row["reason"], "checking the error rates", "{row}");
    assert_eq!(row["ended"], "REVOKED", "{row}");
    assert_eq!(row["end_reason"], "done with the error rates", "{row}");
    assert!(row["sessions"].as_u64().unwrap() >= 1, "{row}");
    assert!(row["used_secs"].as_u64().is_some(), "{row}");
    assert_eq!(json["not_included"], json!([]), "{json}");
    let csv = report(&["--csv", "exceptions"]);
    assert_eq!(code(&csv), 0, "{}", stderr(&csv));
    let csv = stdout(&csv);
    assert!(
        csv.starts_with("kind,at,grant_id,who,target,detail\r\n"),
        "{csv}"
    );
    assert!(csv.contains("refused_by_rules,"), "{csv}");
    // No report from a trail that does not verify.
    std::fs::write(&file, &edited).unwrap();
    let file_arg = file.display().to_string();
    let no_report = jit(
        &[],
        &[
            "report", "--from", &from, "--to", &to, "--export", &file_arg,
        ],
    );
    assert_eq!(code(&no_report), 7, "{}", stdout(&no_report));
    assert!(
        stderr(&no_report).contains("no report is made"),
        "{}",
        stderr(&no_report)
    );

    // Scheduled a day ahead: granted at once by the rules, yet no credentials before it opens
    // (the refusal says when), and withdrawn by its requester before then.
    let scheduled = jit(
        &as_alice,
        &[
            "request",
            "prod-logs-ro",
            "--for",
            "30m",
            "--reason",
            "tomorrow's error-rate review",
            "--ticket",
            "INC-8",
            "--start",
            "+1d",
            "--wait",
            "--output",
            "json",
        ],
    );
    assert_eq!(code(&scheduled), 0, "{}", stderr(&scheduled));
    let later = json_of(&scheduled);
    assert_eq!(later["state"], "ACTIVE", "{later}");
    let opens = later["starts_at"].as_str().unwrap().to_owned();
    assert!(opens.ends_with(":00Z"), "a whole minute: {opens}");
    let too_soon = jit(&as_alice, &["credentials", "prod-logs-ro"]);
    assert_eq!(code(&too_soon), 5, "{}", stderr(&too_soon));
    assert!(
        stderr(&too_soon).contains(&format!("opens at {opens}")),
        "{}",
        stderr(&too_soon)
    );
    let later_id = later["id"].as_str().unwrap();
    let withdrawn = jit(&as_alice, &["cancel", later_id, "--output", "json"]);
    assert_eq!(code(&withdrawn), 0, "{}", stderr(&withdrawn));
    assert_eq!(json_of(&withdrawn)["state"], "CANCELLED");

    // Several targets in one request: one the rules forbid an engineer refuses the whole,
    // naming it.
    let carol = stack.token("carol-cli", &["engineers"]);
    let whole = jit(
        &[("JIT_API_URL", &api), ("JIT_TOKEN", &carol)],
        &[
            "request",
            "prod-logs-ro",
            "break-glass-admin",
            "--for",
            "30m",
            "--reason",
            "checking the error rates again",
            "--ticket",
            "INC-9",
        ],
    );
    assert_eq!(code(&whole), 4, "{}", stderr(&whole));
    assert!(
        stderr(&whole).contains("target `break-glass-admin`")
            && stderr(&whole).contains("nothing was made"),
        "{}",
        stderr(&whole)
    );
}

/// `jit audit verify --bucket` on the stack's audit bucket (the emulator's S3): the chain of
/// checkpoints the sweeper put there verifies, with the API's keys; without credentials it
/// says how to give them; a later version put at a period's key is reported, as a delete
/// marker at another is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_bucket_verifies_from_s3_and_a_later_version_there_is_reported() {
    let stack = stack();
    let aws = tokio::task::spawn_blocking(aws_cli).await.unwrap();
    let endpoint = stack.aws.endpoint_url().unwrap().to_owned();
    let api = stack.api_url.clone();
    let auditor = stack.token("sue-bucket", &["security"]);
    let verify = |extra: &[(&str, &str)]| {
        let mut command = command(
            &[("JIT_API_URL", &api), ("JIT_TOKEN", &auditor)],
            &[
                "audit",
                "verify",
                "--bucket",
                jit_e2e::AUDIT_BUCKET,
                "--endpoint-url",
                &endpoint,
                "--output",
                "json",
            ],
        );
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
        ] {
            command.env_remove(name);
        }
        command.envs(extra.iter().copied()).output().unwrap()
    };
    let credentials = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];

    let without = verify(&[]);
    assert_eq!(code(&without), 2, "{}", stderr(&without));
    assert!(
        stderr(&without).contains("AWS_ACCESS_KEY_ID"),
        "{}",
        stderr(&without)
    );

    // The sweeper starts the chain when the stack starts and closes a minute period every
    // minute: wait for the third checkpoint's copy.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    let summary = loop {
        let out = verify(&credentials);
        if code(&out) == 0 && json_of(&out)["last_seq"].as_u64().unwrap() >= 3 {
            break json_of(&out);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the bucket never held three verified checkpoints: {} {}",
            stdout(&out),
            stderr(&out)
        );
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    };
    assert_eq!(summary["first_seq"], 1, "{summary}");
    assert!(summary["periods"].as_u64().unwrap() >= 3, "{summary}");
    assert_eq!(summary["problems"], json!([]), "{summary}");
    // With the API's keys, its checkpoints were also compared with the table's.
    assert_eq!(summary["compared_with_table"], true, "{summary}");

    // An insider with S3 rights (the emulator applies no bucket policy) puts over one period
    // and deletes another: both are reported, with the keys.
    let s3api = |args: &[&str]| {
        let out = Command::new(&aws)
            .arg("s3api")
            .args(args)
            .args([
                "--endpoint-url",
                &endpoint,
                "--region",
                "us-east-1",
                "--output",
                "json",
            ])
            .args(["--bucket", jit_e2e::AUDIT_BUCKET])
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE")
            .envs(credentials)
            .output()
            .unwrap();
        assert!(out.status.success(), "aws s3api {args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let listed: Value =
        serde_json::from_str(&s3api(&["list-objects-v2", "--prefix", "audit/v1/"])).unwrap();
    let keys: Vec<&str> = listed["Contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["Key"].as_str().unwrap())
        .collect();
    let (first, second) = (keys[0], keys[1]);
    let forged = state_dir().join("forged.jsonl.gz");
    std::fs::write(&forged, b"not the records").unwrap();
    s3api(&[
        "put-object",
        "--key",
        first,
        "--body",
        &forged.display().to_string(),
    ]);
    s3api(&["delete-object", "--key", second]);
    let caught = verify(&credentials);
    assert_eq!(code(&caught), 7, "{}", stdout(&caught));
    let said = stderr(&caught);
    assert!(said.contains("does not verify"), "{said}");
    for (key, what) in [
        (
            first,
            "1 later version(s) at its key (0 of them delete markers)",
        ),
        (
            second,
            "1 later version(s) at its key (1 of them delete markers)",
        ),
    ] {
        assert!(
            said.lines().any(|l| l.contains(key) && l.contains(what)),
            "{key}: {what}\n{said}"
        );
    }
}

#[test]
fn a_missing_grant_no_token_and_a_bad_token_are_told_apart_by_exit_code() {
    let stack = stack();
    let api = stack.api_url.clone();
    let alice = stack.token("alice-refused", &["engineers"]);
    let as_alice: Vec<(&str, &str)> = vec![("JIT_API_URL", &api), ("JIT_TOKEN", &alice)];
    let missing = jit(&as_alice, &["show", "0190c0de-0000-7000-8000-000000000001"]);
    assert_eq!(code(&missing), 4, "{}", stderr(&missing));
    let nowhere = state_dir().join("no-token.json").display().to_string();
    asks_to_sign_in(&api, &nowhere);
    let bad_token = jit(
        &[("JIT_API_URL", &api), ("JIT_TOKEN", "not-a-token")],
        &["ls"],
    );
    assert_eq!(code(&bad_token), 3, "{}", stderr(&bad_token));
}

/// The CLI's own dependency tree holds neither the DynamoDB nor the KMS SDK, nor the SDK's
/// credential chain: it calls the API over HTTPS, and reads the audit bucket with S3's client
/// alone and the environment's credentials. (A workspace build unifies features, so only the
/// CLI's own tree can show it; `.ci/run` also builds the CLI on its own.)
#[test]
fn the_cli_builds_without_the_dynamodb_and_kms_sdks() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let out = Command::new(cargo)
        .args(["tree", "-p", "jit-cli", "-e", "normal", "--prefix", "none"])
        .args(["--locked", "--offline"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo tree: {}", stderr(&out));
    let tree = stdout(&out);
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"jit-core"), "{tree}");
    for sdk in [
        "aws-sdk-dynamodb",
        "aws-sdk-kms",
        "serde_dynamo",
        "aws-config",
    ] {
        assert!(!crates.contains(&sdk), "the CLI pulls in {sdk}:\n{tree}");
    }
}
