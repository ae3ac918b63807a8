//! `run`: an experiment from a preset or a saved file, with command-line overrides, progress
//! on the terminal, a comparison table, and results files under `--out`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use ewc_workbench::data::HowFound;
use ewc_workbench::experiment::config::{self, ExperimentConfig};
use ewc_workbench::experiment::results::{CurvePoint, RunStatus, comparison_table};
use ewc_workbench::experiment::runner::{self, PreparedTasks, RunEvent};
use ewc_workbench::gpu::GpuContext;
use ewc_workbench::plots;

/// Options of `ewc-workbench run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Start from a preset: seed, permuted-mnist, split-mnist or rotated-mnist.
    #[arg(long, conflicts_with = "config")]
    preset: Option<String>,
    /// Start from a saved experiment file (JSON, as the workbench saves it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory holding mnist/ and fashion-mnist/ with the usual IDX file names.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Methods to compare, comma-separated: finetune, joint, frozen, l2, ewc, online-ewc, lwf.
    #[arg(long)]
    methods: Option<String>,
    /// Set a parameter, e.g. `ewc.lambda=100,1000` (a list sweeps: one run per value). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Passes over each task's training set.
    #[arg(long)]
    epochs: Option<usize>,
    /// Training images per task.
    #[arg(long)]
    limit: Option<usize>,
    /// Seed for initialisation, batch order, permutations and Fisher samples.
    #[arg(long)]
    seed: Option<u64>,
    /// Device for training: gpu, any wgpu adapter, software renderers included. The plain-Rust
    /// reference (cpu) checks the kernels and is timed by `bench --backend cpu`, but does not
    /// run experiments.
    #[arg(long, default_value = "gpu", value_parser = ["gpu", "cpu"])]
    backend: String,
    /// Write results.json, results.csv and the plots here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn build_config(args: &RunArgs) -> anyhow::Result<ExperimentConfig> {
    let mut config = match (&args.config, &args.preset) {
        (Some(path), _) => {
            let mut config = ExperimentConfig::load(path)?;
            // Paths inside an experiment file are relative to the file, not to the shell.
            if let Some(dir) = path.parent() {
                config.resolve_relative_paths(dir);
            }
            config
        }
        (None, Some(name)) => ExperimentConfig::preset(name)?,
        (None, None) => ExperimentConfig::preset("seed")?,
    };
    if let Some(list) = &args.methods {
        config::apply_methods_list(&mut config, list)?;
    }
    for assignment in &args.set {
        config::apply_set(&mut config, assignment)?;
    }
    if let Some(epochs) = args.epochs {
        config.training.epochs = epochs;
    }
    if args.limit.is_some() {
        config.training.limit = args.limit;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = Some(dir.clone());
    }
    config.validate()?;
    Ok(config)
}

/// Runs the experiment; exit status 0 when every run completed.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    if args.backend != "gpu" {
        // The reference implementation trains too slowly for whole experiments and has no
        // runner; `bench --backend cpu` measures it.
        anyhow::bail!(
            "--backend cpu does not run experiments: the plain-Rust reference only checks the \
             GPU kernels. Use --backend gpu; a software renderer such as lavapipe counts \
             (`ewc-workbench devices` lists the adapters)"
        );
    }
    let config = build_config(args)?;
    if let Some(dir) = &args.out {
        // Fail before training, not after it, when the results cannot be written.
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create the output directory {}", dir.display()))?;
    }
    let (tasks, sources) = runner::load_tasks_with_sources(&config, config.data_dir.as_deref())?;
    let prepared = PreparedTasks::new(tasks, config.head, config.training.eval_limit, config.seed)
        .with_sources(sources);
    warn_about_small_data(&prepared, config.training.limit);
    let ctx = GpuContext::new()?;
    runner::check_fits(&ctx, &config, &prepared)?;

    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        ctrlc::set_handler(move || {
            if cancel.swap(true, Ordering::Relaxed) {
                std::process::exit(130);
            }
            eprintln!("\nstopping: finishing the current step; press Ctrl-C again to quit at once");
        })
        .context("could not install the Ctrl-C handler")?;
    }

    let started = Instant::now();
    let (sender, receiver) = mpsc::channel();
    let results = std::thread::scope(|scope| {
        let printer = scope.spawn(move || print_progress(&receiver));
        let results = runner::run_experiment(&ctx, &config, &prepared, &sender, &cancel);
        drop(sender);
        // The printer only ends when the channel closes, and a panic there is a bug to report.
        if printer.join().is_err() {
            log::error!("the progress printer stopped unexpectedly");
        }
        results
    });
    let wall = started.elapsed().as_secs_f64();

    println!("\n{}", comparison_table(&results));
    println!(
        "device: {} ({}); wall time {wall:.1} s",
        results.device.adapter, results.device.backend
    );
    if let Some(dir) = &args.out {
        results.save_to_dir(dir)?;
        println!("wrote {}", dir.join("results.json").display());
        println!("wrote {}", dir.join("results.csv").display());
        let written = plots::write_all_plots_on(&ctx, &results, dir)?;
        for path in &written {
            println!("wrote {}", path.display());
        }
        warn_about_old_plots(dir, &written);
    }
    let all_completed = results
        .runs
        .iter()
        .all(|r| r.status == RunStatus::Completed);
    Ok(if all_completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Names on stderr the PNG files in `dir` that this run did not write, since figures of an
/// earlier experiment next to the new results would mislead.
fn warn_about_old_plots(dir: &std::path::Path, written: &[PathBuf]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut old: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "png"))
        .filter(|path| !written.contains(path))
        .filter_map(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .collect();
    if old.is_empty() {
        return;
    }
    old.sort();
    eprintln!(
        "note: {} also holds {} figure(s) that this run did not write, from an earlier \
         experiment: {}",
        dir.display(),
        old.len(),
        old.join(", ")
    );
}

/// Says on stderr when the tasks are the bundled subsets or fewer images than asked for, since
/// the numbers then differ from those of the full sets.
fn warn_about_small_data(prepared: &PreparedTasks, limit: Option<usize>) {
    let records = prepared.data_records();
    if let Some(limit) = limit {
        for record in records.iter().filter(|record| record.train_images < limit) {
            eprintln!(
                "note: {} has {} training images, fewer than the limit of {limit}; it trains on \
                 all of them",
                record.task, record.train_images
            );
        }
    }
    let bundled: Vec<&str> = records
        .iter()
        .filter(|record| record.origin == HowFound::Bundled.to_string())
        .map(|record| record.task.as_str())
        .collect();
    if !bundled.is_empty() {
        eprintln!(
            "note: {} train on the bundled subsets (a few thousand images per dataset), not the \
             full datasets; pass --data-dir or set EWC_WORKBENCH_DATA for the full sets",
            bundled.join(", ")
        );
    }
}

/// Prints one progress line per run (rewritten in place on a terminal) and the runner's logs.
fn print_progress(events: &mpsc::Receiver<RunEvent>) {
    let terminal = std::io::stderr().is_terminal();
    let mut label = String::new();
    let mut total = 1u64;
    // The latest curve point: its loss and penalty are shown until the next one, within the
    // task it was measured in.
    let mut point: Option<CurvePoint> = None;
    let mut last_printed = Instant::now();
    for event in events {
        let mut stderr = std::io::stderr().lock();
        match event {
            RunEvent::Started {
                label: l,
                total_steps,
                ..
            } => {
                label = l;
                total = total_steps.max(1);
            }
            RunEvent::Step { task, step, .. } => {
                if terminal || last_printed.elapsed().as_secs() >= 10 {
                    last_printed = Instant::now();
                    let measured = point.as_ref().filter(|point| point.task == task);
                    let line = progress_line(&label, task, step, total, measured);
                    let _ = if terminal {
                        write!(stderr, "\r{line}\x1b[K")
                    } else {
                        writeln!(stderr, "{line}")
                    };
                }
            }
            RunEvent::Evaluated { point: latest, .. } => point = Some(latest),
            // The log line after each task already gives the row.
            RunEvent::Baseline { .. } | RunEvent::TaskEnded { .. } => {}
            RunEvent::Log(message) => {
                let _ = writeln!(
                    stderr,
                    "{}{message}",
                    if terminal { "\r\x1b[K" } else { "" }
                );
            }
            RunEvent::Finished { result, .. } => {
                let _ = writeln!(
                    stderr,
                    "{}{}: {} in {:.1} s{}",
                    if terminal { "\r\x1b[K" } else { "" },
                    result.label,
                    result.status.name(),
                    result.train_seconds,
                    if result.message.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", result.message)
                    }
                );
                point = None;
            }
        }
    }
}

fn progress_line(
    label: &str,
    task: usize,
    step: u64,
    total: u64,
    point: Option<&CurvePoint>,
) -> String {
    const WIDTH: usize = 24;
    let filled = ((step as f64 / total as f64) * WIDTH as f64).round() as usize;
    let bar: String = "#".repeat(filled.min(WIDTH)) + &"-".repeat(WIDTH - filled.min(WIDTH));
    let measured = point.map_or_else(String::new, |point| {
        let loss = point
            .loss
            .map_or_else(String::new, |l| format!("  loss {l:.3}"));
        let penalty = point
            .penalty
            .map_or_else(String::new, |p| format!("  penalty {p:.3e}"));
        format!("{loss}{penalty} (at step {})", point.step)
    });
    format!(
        "{label:<20} [{bar}] task {} step {step}/{total}{measured}",
        task + 1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_names_measured_step() {
        let point = CurvePoint {
            step: 16,
            task: 1,
            accuracy: vec![0.9, 0.5],
            loss: Some(0.25),
            penalty: Some(0.0015),
        };

        let with_point = progress_line("ewc", 1, 20, 64, Some(&point));
        let without = progress_line("ewc", 1, 20, 64, None);

        assert!(
            with_point.ends_with("task 2 step 20/64  loss 0.250  penalty 1.500e-3 (at step 16)"),
            "{with_point}"
        );
        assert!(without.ends_with("task 2 step 20/64"), "{without}");
    }
}
