//! `jit-stack`: run the whole broker locally, walk the demo, or print a token.
//!
//! ```text
//! jit-stack [--port 9680] [--sweep-every 10s] [--verbose]   serve until Ctrl-C
//! jit-stack --demo                                          walk the main job, exit 0 if it worked
//! jit-stack token --user alice --groups sre,oncall [--ttl 1h] [--port 9680]
//! ```

// The SDK and runtime futures nest deeply; the default limit is too low to lay them out.
#![recursion_limit = "256"]

use std::process::ExitCode;
use std::time::Duration;

use jit_core::domain::GrantDuration;
use jit_stack::{DEFAULT_PORT, DEMO_PEOPLE, LogSink, Person, Stack, StackOptions};

const USAGE: &str = "usage:
  jit-stack [--port N] [--sweep-every 10s] [--verbose]   run the broker locally until Ctrl-C
  jit-stack --demo [--verbose]                          walk request to audit, exit 0 if every step worked
  jit-stack token --user U [--groups g1,g2] [--ttl 1h] [--port N]   print a token for the running stack
  jit-stack --movable-clock ...                         run with the functions on a clock `clock` moves
  jit-stack clock 2h                                    move the running stack's functions 2 hours ahead";

struct Args {
    demo: bool,
    token: bool,
    movable_clock: bool,
    clock: Option<Duration>,
    verbose: bool,
    port: u16,
    sweep_every: Option<Duration>,
    user: Option<String>,
    groups: Vec<String>,
    ttl: i64,
}

fn duration(text: &str, flag: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Some(ms) = text.strip_suffix("ms") {
        return ms
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| format!("{flag} `{text}` is not a duration such as 500ms, 10s or 1m"));
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut secs = 0_u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{flag} `{text}` is not a duration such as 500ms, 10s or 1m"))?;
        number.clear();
        secs += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => {
                return Err(format!(
                    "{flag} `{text}` is not a duration such as 500ms, 10s or 1m"
                ));
            }
        };
    }
    if !number.is_empty() || secs == 0 {
        return Err(format!(
            "{flag} `{text}` is not a duration such as 500ms, 10s or 1m"
        ));
    }
    Ok(Duration::from_secs(secs))
}

fn parse(args: Vec<String>) -> Result<Args, String> {
    let mut a = Args {
        demo: false,
        token: false,
        movable_clock: false,
        clock: None,
        verbose: false,
        port: DEFAULT_PORT,
        sweep_every: None,
        user: None,
        groups: Vec::new(),
        ttl: 3600,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "token" => a.token = true,
            "clock" => a.clock = Some(duration(&value("clock")?, "clock")?),
            "--movable-clock" => a.movable_clock = true,
            "--demo" => a.demo = true,
            "--verbose" | "-v" => a.verbose = true,
            "--port" => {
                let v = value("--port")?;
                a.port = v
                    .parse()
                    .map_err(|_| format!("--port `{v}` is not a port number"))?;
            }
            "--sweep-every" => {
                a.sweep_every = Some(duration(&value("--sweep-every")?, "--sweep-every")?)
            }
            "--user" => a.user = Some(value("--user")?),
            "--groups" => {
                a.groups = value("--groups")?
                    .split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "--ttl" => {
                let v = value("--ttl")?;
                a.ttl = GrantDuration::parse(&v)
                    .map(|d| i64::from(d.as_secs()))
                    .map_err(|e| format!("--ttl: {e}"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(a)
}

/// `jit-stack clock`: moves the running stack's functions `ahead` further, when it was
/// started with `--movable-clock`.
fn move_clock(ahead: Duration) -> ExitCode {
    let file = StackOptions::default()
        .state_dir
        .join(jit_stack::CLOCK_FILE);
    let ahead = i64::try_from(ahead.as_secs()).unwrap_or(i64::MAX);
    match jit_stack::move_clock_file(&file, ahead) {
        Ok(offset) => {
            println!("the functions' clock is {offset} s ahead of this machine's");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("jit-stack: {e}; start the stack with --movable-clock");
            ExitCode::FAILURE
        }
    }
}

fn token(a: &Args) -> ExitCode {
    let Some(user) = &a.user else {
        eprintln!("jit-stack token needs --user\n{USAGE}");
        return ExitCode::from(2);
    };
    let state = StackOptions::default().state_dir;
    let issuer = jit_stack::issuer_for(a.port.saturating_add(1));
    match jit_stack::provider(&state, &issuer) {
        Ok(p) => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            println!(
                "{}",
                p.mint(
                    &Person {
                        sub: user.clone(),
                        groups: a.groups.clone()
                    },
                    now,
                    a.ttl
                )
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("jit-stack: {e}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = match parse(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("jit-stack: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if a.token {
        return token(&a);
    }
    if let Some(ahead) = a.clock {
        return move_clock(ahead);
    }
    let filter = if a.verbose { "info" } else { "warn" };
    tracing_subscriber_init(filter);
    let mut options = StackOptions {
        sweep_every: a.sweep_every,
        movable_clock: a.movable_clock,
        ..StackOptions::default()
    };
    if a.verbose {
        options.logs = LogSink::Stderr;
    }
    if a.demo {
        options.port = 0;
    } else {
        options.port = a.port;
    }
    eprintln!("jit-stack: building the functions and starting the emulator ...");
    let started = std::time::Instant::now();
    let stack = match Stack::start(options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("jit-stack: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("jit-stack: up in {:.1} s", started.elapsed().as_secs_f64());
    if a.demo {
        let mut say = |line: &str| println!("{line}");
        return match jit_stack::demo::run(&stack, &mut say).await {
            Ok(()) => {
                println!("demo: every step worked");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("demo FAILED: {e}");
                println!(
                    "(function logs: {})",
                    stack.state_dir.join("logs").display()
                );
                ExitCode::FAILURE
            }
        };
    }
    println!("API:        {}", stack.api_url);
    println!(
        "OpenID:     {}/.well-known/openid-configuration",
        stack.issuer
    );
    println!(
        "Table:      {} (emulator at {})",
        stack.table,
        stack.aws.endpoint_url().unwrap_or("?")
    );
    println!(
        "AWS:        {} (AWS_ENDPOINT_URL for a grant's credentials: each call shows as the grant's activity)",
        stack.aws_endpoint
    );
    println!(
        "PagerDuty:  {} (stand-in; nobody is on call until you say: curl -X PUT {}/standin/oncalls -d '[{{\"user\":\"POLIVE1\",\"email\":\"olive@example.com\",\"escalation_policy\":\"PSRE001\",\"escalation_level\":1}}]' puts olive on call for prod-logs-ro)",
        stack.pagerduty().url,
        stack.pagerduty().url
    );
    println!(
        "Slack:      {} (stand-in, workspace {}; users join with: curl -X PUT {}/standin/users -d '[{{\"id\":\"U0SAM\",\"team_id\":\"{}\"}}]'; /jit link: curl {}/standin/command -d '{{\"user\":\"U0SAM\",\"text\":\"link\"}}'; a click: curl {}/standin/click -d '{{\"user\":\"U0SAM\",\"grant\":\"<id>\",\"approve\":true}}'; the channel: {}/standin/channels/C0REVIEWS)",
        stack.slack().url,
        stack.slack().team_id,
        stack.slack().url,
        stack.slack().team_id,
        stack.slack().url,
        stack.slack().url,
        stack.slack().url
    );
    println!("Logs:       {}", stack.state_dir.join("logs").display());
    if let Some(file) = stack.clock_file() {
        println!(
            "Clock:      movable (`jit-stack clock 1h` moves every function an hour ahead; {})",
            file.display()
        );
    }
    println!("\nTokens (valid 1 hour; `jit-stack token --user U --groups g1,g2` makes more):");
    for (who, groups, role) in DEMO_PEOPLE {
        println!("\n# {who} [{}]: {role}", groups.join(","));
        println!(
            "export TOKEN_{}={}",
            who.to_uppercase(),
            stack.token(who, groups)
        );
    }
    println!(
        "\nTry:\n  curl -s -X POST {}/requests -H \"authorization: Bearer $TOKEN_ALICE\" \\\n    -H 'content-type: application/json' \\\n    -d '{{\"target\":\"prod-logs-ro\",\"duration\":\"30m\",\"reason\":\"checking error rates\",\"ticket\":\"INC-1\"}}'",
        stack.api_url
    );
    println!("\nServing until Ctrl-C.");
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("jit-stack: stopping");
    drop(stack);
    ExitCode::SUCCESS
}

/// Logs of the stack itself on standard error (`RUST_LOG` overrides the level).
fn tracing_subscriber_init(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
