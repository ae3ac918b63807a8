//! `bench`: samples per second of a training step, evaluation and the Fisher pass, on the GPU
//! engine or the CPU reference, as a table or as JSON lines.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use serde::Serialize;

use ewc_workbench::data;
use ewc_workbench::gpu::{FisherKind, GpuContext, GpuTrainer};
use ewc_workbench::model::{Architecture, IMAGE_PIXELS, Network};
use ewc_workbench::reference::{self, Optimizer, OptimizerKind};
use ewc_workbench::rng::Rng;

/// Options of `ewc-workbench bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Network: seed-cnn or mlp (2×400).
    #[arg(long, default_value = "seed-cnn")]
    model: String,
    /// Samples per training step.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// gpu (the WGSL engine on the adapter wgpu picks) or cpu (the plain-Rust reference).
    #[arg(long, default_value = "gpu")]
    backend: String,
    /// Training steps to time (after warm-up steps that are not timed).
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Also time each kernel of a training step on its own (GPU only).
    #[arg(long)]
    profile: bool,
}

#[derive(Debug, Serialize)]
struct Measurement {
    what: &'static str,
    model: String,
    batch: usize,
    backend: String,
    adapter: String,
    samples_per_second: f64,
}

/// Real MNIST training images when a data directory is found, random pixels otherwise.
fn bench_images(count: usize) -> (Vec<f32>, Vec<u32>) {
    match data::load_dataset(None, "mnist") {
        Ok(pair) => {
            let n = pair.train.len();
            let images = (0..count)
                .flat_map(|i| {
                    pair.train
                        .image(i % n)
                        .iter()
                        .map(|&p| f32::from(p) / 255.0)
                        .collect::<Vec<_>>()
                })
                .collect();
            let labels = (0..count)
                .map(|i| u32::from(pair.train.labels[i % n]))
                .collect();
            (images, labels)
        }
        Err(error) => {
            log::warn!("benchmarking on random pixels: {error}");
            let mut rng = Rng::new(1);
            (
                (0..count * IMAGE_PIXELS)
                    .map(|_| rng.uniform(0.0, 1.0))
                    .collect(),
                (0..count).map(|_| rng.below(10) as u32).collect(),
            )
        }
    }
}

/// Runs the benchmarks and prints them.
pub fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let architecture = match args.model.as_str() {
        "seed-cnn" => Architecture::SeedCnn,
        "mlp" => Architecture::default_mlp(),
        other => anyhow::bail!("unknown model {other:?}; expected seed-cnn or mlp"),
    };
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    anyhow::ensure!(args.steps > 0, "--steps must be at least 1");
    let net = Network::new(&architecture, &[10]);
    let measurements = match args.backend.as_str() {
        "gpu" => bench_gpu(args, net)?,
        "cpu" => bench_cpu(args, &net),
        other => anyhow::bail!("unknown backend {other:?}; expected gpu or cpu"),
    };
    if !args.json {
        println!(
            "{:<18} {:<10} {:>6} {:<8} {:>14}  adapter",
            "what", "model", "batch", "backend", "samples/s"
        );
    }
    for m in &measurements {
        if args.json {
            println!("{}", serde_json::to_string(m)?);
        } else {
            println!(
                "{:<18} {:<10} {:>6} {:<8} {:>14.1}  {}",
                m.what, m.model, m.batch, m.backend, m.samples_per_second, m.adapter
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_gpu(args: &BenchArgs, net: Network) -> anyhow::Result<Vec<Measurement>> {
    let ctx = GpuContext::new()?;
    ewc_workbench::gpu::check_batch(&ctx, &net, args.batch)?;
    let adapter = ctx.adapter.name.clone();
    let params = net.init_params(0);
    let mut trainer = GpuTrainer::new(ctx, net, &params, OptimizerKind::adam(1e-3));
    let batches = 32;
    let (images, labels) = bench_images(args.batch * batches);
    let batch_images = |i: usize| {
        &images[(i % batches) * args.batch * IMAGE_PIXELS
            ..((i % batches) + 1) * args.batch * IMAGE_PIXELS]
    };
    let batch_labels =
        |i: usize| &labels[(i % batches) * args.batch..((i % batches) + 1) * args.batch];

    let warmup = 10.min(args.steps);
    for i in 0..warmup {
        trainer.train_step(batch_images(i), batch_labels(i), 0);
    }
    trainer.take_train_stats()?;
    let started = Instant::now();
    for i in 0..args.steps {
        trainer.train_step(batch_images(i), batch_labels(i), 0);
    }
    // Reading the sums back waits for every queued step.
    trainer.take_train_stats()?;
    let train = (args.steps * args.batch) as f64 / started.elapsed().as_secs_f64();

    let eval_samples = images.len() / IMAGE_PIXELS;
    trainer.evaluate(&images, &labels, 0, 500)?;
    let started = Instant::now();
    let rounds = 3;
    for _ in 0..rounds {
        trainer.evaluate(&images, &labels, 0, 500)?;
    }
    let eval = (rounds * eval_samples) as f64 / started.elapsed().as_secs_f64();

    let fisher_samples = 512.min(eval_samples);
    let uniforms = vec![0.5; fisher_samples];
    let mut fisher = Vec::new();
    for (what, kind) in [
        ("fisher_exact", FisherKind::Exact),
        ("fisher_empirical", FisherKind::Empirical),
    ] {
        let (x, y) = (
            &images[..fisher_samples * IMAGE_PIXELS],
            &labels[..fisher_samples],
        );
        trainer.fisher_diagonal(x, y, 0, kind, &uniforms, 64)?;
        let started = Instant::now();
        trainer.fisher_diagonal(x, y, 0, kind, &uniforms, 64)?;
        fisher.push((
            what,
            fisher_samples as f64 / started.elapsed().as_secs_f64(),
        ));
    }

    if args.profile {
        let mut totals: Vec<(String, f64)> = Vec::new();
        let rounds = 10u32;
        for i in 0..rounds as usize {
            for (k, (label, seconds)) in trainer
                .profile_train_step(batch_images(i), batch_labels(i), 0)
                .into_iter()
                .enumerate()
            {
                if totals.len() <= k {
                    totals.push((label, 0.0));
                }
                totals[k].1 += seconds / f64::from(rounds);
            }
        }
        eprintln!("time per kernel in one training step (each dispatch waited for on its own):");
        for (label, seconds) in &totals {
            eprintln!("  {label:<28} {:>9.3} ms", seconds * 1e3);
        }
    }

    let m = |what, samples_per_second| Measurement {
        what,
        model: args.model.clone(),
        batch: args.batch,
        backend: "gpu".to_owned(),
        adapter: adapter.clone(),
        samples_per_second,
    };
    let mut out = vec![m("train_step", train), m("eval", eval)];
    out.extend(fisher.into_iter().map(|(what, rate)| m(what, rate)));
    Ok(out)
}

fn bench_cpu(args: &BenchArgs, net: &Network) -> Vec<Measurement> {
    let mut params = net.init_params(0);
    let mut optimizer = Optimizer::new(OptimizerKind::adam(1e-3), params.len());
    let (images, labels) = bench_images(args.batch);
    let steps = args.steps.min(5);
    let started = Instant::now();
    for _ in 0..steps {
        let (_, grads) = reference::loss_and_gradient(net, &params, 0, &images, &labels);
        optimizer.step(&mut params, &grads, None);
    }
    let rate = (steps * args.batch) as f64 / started.elapsed().as_secs_f64();
    vec![Measurement {
        what: "train_step",
        model: args.model.clone(),
        batch: args.batch,
        backend: "cpu".to_owned(),
        adapter: "plain-Rust reference (one thread, f64)".to_owned(),
        samples_per_second: rate,
    }]
}
