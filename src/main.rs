//! The `ewc-workbench` command line: `run`, `inspect`, `bench` and `devices`. Without a
//! subcommand it opens the workbench window.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Continual-learning experiments trained with WGSL compute shaders.
#[derive(Debug, Parser)]
#[command(name = "ewc-workbench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an experiment headless and print a comparison table.
    Run(cli::run::RunArgs),
    /// Describe dataset files (IDX, raw or gzip, and CSV), or say why they cannot be read.
    Inspect {
        /// Files to describe.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Draw the plots of a saved results file again, without retraining.
    Plot {
        /// A results.json written by `run --out` or the workbench.
        results: PathBuf,
        /// Directory for the PNG files (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure training, evaluation and Fisher throughput.
    Bench(cli::bench::BenchArgs),
    /// List the GPU adapters wgpu can see and the one that will be used.
    Devices,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(
            "info,wgpu_core=warn,wgpu_hal=warn,wgpu_hal::gles::egl=off,naga=warn",
        ),
    )
    .format_timestamp(None)
    .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::Run(args)) => cli::run::run(&args),
        Some(Command::Inspect { files }) => cli::inspect(&files),
        Some(Command::Plot { results, out }) => cli::plot(&results, &out),
        Some(Command::Bench(args)) => cli::bench::bench(&args),
        Some(Command::Devices) => cli::devices(),
        None => ewc_workbench::ui::run_window()
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text the message before it
/// already includes (the library errors name their source in their own message).
fn describe(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
