//! Subcommands of the binary. Errors are reported once, by `main`.

pub mod bench;
pub mod run;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use ewc_workbench::data;
use ewc_workbench::experiment::results::load_results;
use ewc_workbench::gpu;
use ewc_workbench::plots;

/// `inspect`: one report per file; exit status 0 only when every file was read.
pub fn inspect(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut failures = 0;
    for file in files {
        match data::inspect(file) {
            Ok(report) => println!("{report}"),
            Err(error) => {
                failures += 1;
                eprintln!("error: {error}");
            }
        }
    }
    if failures > 0 {
        eprintln!("{failures} of {} files could not be read", files.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `devices`: every adapter, marking the one the engine would use.
pub fn devices() -> anyhow::Result<ExitCode> {
    let (adapters, chosen) = gpu::list_adapters();
    if adapters.is_empty() {
        println!("wgpu sees no adapters.");
    }
    for (i, a) in adapters.iter().enumerate() {
        let marker = if Some(i) == chosen { "*" } else { " " };
        let usable = if a.usable {
            ""
        } else {
            "  (no compute shaders within the default limits)"
        };
        println!(
            "{marker} {}  [{} {}]  driver: {}{usable}",
            a.name, a.backend, a.device_type, a.driver
        );
    }
    match chosen {
        Some(i) => {
            println!(
                "\n* will be used: {} (set WGPU_ADAPTER_NAME or WGPU_BACKEND to choose another)",
                adapters[i].name
            );
            Ok(ExitCode::SUCCESS)
        }
        None => Err(gpu::GpuContext::new()
            .err()
            .map_or_else(|| anyhow::anyhow!("no usable adapter"), anyhow::Error::from)),
    }
}

/// `plot`: the PNG files of a saved results file.
pub fn plot(results: &Path, out: &Path) -> anyhow::Result<ExitCode> {
    let results = load_results(results)?;
    std::fs::create_dir_all(out)
        .with_context(|| format!("could not create the output directory {}", out.display()))?;
    for path in plots::write_all_plots(&results, out)? {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
