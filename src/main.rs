//! `bakery-image`: parse the command line, set up logging, run, map the outcome to an exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match bakery_image::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version succeed; every usage mistake is invalid input: exit 1
            // (clap's own default is 2, which we document for I/O and tool failures).
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let level = match cli.verbose {
        // Our progress lines by default; dependencies only when something is wrong.
        0 => "bakery_image=info,warn",
        1 => "bakery_image=debug,info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BAKERY_LOG")
                .unwrap_or_else(|_| level.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
    match bakery_image::app::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = bakery_image::app::exit_code(&err);
            // Located profile errors print as themselves (file:line, key, hint), also
            // when found after validation (e.g. image.pi5 against the kernel built).
            if let Some(d) = err
                .chain()
                .find_map(|e| e.downcast_ref::<bakery_image::profile::Diagnostics>())
            {
                eprintln!("{d}");
            } else {
                eprintln!("error: {err:#}");
            }
            ExitCode::from(code)
        }
    }
}
