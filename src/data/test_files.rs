//! Helpers for tests that write dataset files: a temporary folder and IDX, gzip and CSV
//! builders.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::Compression as Level;
use flate2::write::GzEncoder;

use crate::model::{IMAGE_PIXELS, IMAGE_SIDE};

/// A folder under the system temp folder, unique to this process and call, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(purpose: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let unique = format!(
            "ewc-workbench-{purpose}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        fs::create_dir_all(&path).expect("create temp folder");
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` to `name` inside the folder and returns the file's path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent folder");
        }
        fs::write(&path, bytes).expect("write test file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Builds an IDX file: magic number with `type_code`, the dimensions, then `data` as given.
pub fn idx_bytes(type_code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, type_code, dims.len() as u8];
    for dim in dims {
        bytes.extend_from_slice(&dim.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

/// Builds an unsigned-byte IDX images file of `count` 28×28 images; image `i` has every pixel `i * 3`.
pub fn images_idx(count: u32) -> Vec<u8> {
    let side = IMAGE_SIDE as u32;
    idx_bytes(0x08, &[count, side, side], &image_pixels(count))
}

/// Pixels of `count` images as in [`images_idx`].
pub fn image_pixels(count: u32) -> Vec<u8> {
    (0..count)
        .flat_map(|i| std::iter::repeat_n((i * 3 % 256) as u8, IMAGE_PIXELS))
        .collect()
}

/// Builds an unsigned-byte IDX labels file.
pub fn labels_idx(labels: &[u8]) -> Vec<u8> {
    idx_bytes(0x08, &[labels.len() as u32], labels)
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Level::default());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("finish gzip")
}

/// Builds one CSV row: the label, then 784 copies of `pixel`.
pub fn csv_row(label: &str, pixel: &str) -> String {
    let mut fields = vec![label.to_owned()];
    fields.extend(std::iter::repeat_n(pixel.to_owned(), IMAGE_PIXELS));
    fields.join(",")
}
