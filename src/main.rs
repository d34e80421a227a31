//! The `nachweis` binary: settings → telemetry → the chosen command.
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // The extraction sandbox is this same binary started as a child process;
    // it must not build a tokio runtime or read settings, so it is dispatched
    // before anything else happens.
    if args.get(1).map(String::as_str) == Some("sandbox-extract") {
        return ExitCode::from(nachweis::extract::sandbox::child_main(&args[2..]) as u8);
    }
    ExitCode::SUCCESS
}
