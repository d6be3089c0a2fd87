//! The `wechat-doctor` command: reads the demos' environment, runs every check, prints one line
//! per check and exits with 0 (all ok), 1 (a check failed) or 2 (bad usage or settings).

use std::process::ExitCode;

/// The `--help` text.
fn usage() -> String {
    let mut text = String::from(
        "wechat-doctor: checks a WeChat setup (credentials, IP whitelist, jsapi_ticket, public URL,\n\
         WeChat Pay v2/v3 credentials, clock) without changing anything or spending money.\n\n\
         Usage: wechat-doctor [--help | --version]\n\n\
         Exit codes: 0 every check ok or skipped, 1 a check failed, 2 bad usage or settings.\n\n\
         Environment (the demos' variables):\n",
    );
    for (name, what) in wechat_doctor::ENV_VARS {
        text.push_str(&format!("  {name}\n      {what}\n"));
    }
    text
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("-h" | "--help") if args.len() == 1 => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") if args.len() == 1 => {
            println!("wechat-doctor {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("wechat-doctor: unexpected argument {other:?}; see --help");
            return ExitCode::from(2);
        }
    }
    let settings = match wechat_doctor::Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("wechat-doctor: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("wechat-doctor: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let report = runtime.block_on(wechat_doctor::run(&settings));
    print!("{}", report.to_text());
    if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
