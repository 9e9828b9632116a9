//! `iotc`: tools around the connector. `decode` turns an ESP3 frame into IoTC telemetry JSON;
//! `simulate` plays Aruba access points sending EnOcean telegrams (a load generator);
//! `healthcheck` is the containers' health check.

mod decode;
mod healthcheck;
mod simulate;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "iotc", version, about = "EnOcean IoT Connector tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode one ESP3 frame (hex) and print IoTC's telemetry JSON.
    Decode(decode::Args),
    /// Simulate Aruba APs sending EnOcean telegrams to an ingress.
    Simulate(simulate::Args),
    /// Container health check: GET /healthz on 127.0.0.1, success on status 200.
    Healthcheck(healthcheck::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => decode::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Healthcheck(args) => healthcheck::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
