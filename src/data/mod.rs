//! Datasets: reading them, finding them, and turning them into continual-learning task
//! sequences and training batches.
//!
//! The flow has four steps:
//!
//! 1. [`locate_dataset`] (or [`find_data_dir`]) decides where the files are.
//! 2. [`load_mnist_dir`], [`load_idx_pair`] or [`load_csv`] read them into a [`Dataset`] of
//!    28×28 unsigned-byte images with labels 0–9.
//! 3. A task builder ([`seed_sequence`], [`permuted_mnist`], [`split_mnist`],
//!    [`rotated_mnist`], [`custom`]) turns datasets into [`Task`]s with their transforms
//!    already applied, and [`limit_training`] caps their training splits.
//! 4. [`fill_batch`] turns task data into the `f32` images and `u32` targets that the trainer
//!    uploads.
//!
//! Readers trust nothing in a file. Every header field is checked against the bytes that are
//! really there before anything is allocated from it, and every failure is a [`DataError`]
//! that names the file, the field and the value. [`inspect`] reports what a file contains, or
//! why it cannot be read, for the `inspect` subcommand.
//!
//! Images stay as `u8` until batching, so the full MNIST training set costs 47 MB per task
//! rather than 188 MB as `f32`.

mod batch;
mod csv;
mod error;
mod idx;
mod inspect;
mod load;
mod source;
mod tasks;
#[cfg(test)]
pub(crate) mod test_files;
mod transform;

pub use batch::{fill_batch, shuffled_order};
pub use csv::load_csv;
pub use error::DataError;
pub use idx::{Compression, ElementType, IdxHeader, IdxReader};
pub use inspect::{FileFormat, FileReport, inspect};
pub use load::{load_idx_pair, load_mnist_dir, training_image_count};
pub use source::{
    DataSource, HowFound, find_data_dir, load_dataset, load_located_dataset, locate_dataset,
};
pub use tasks::{
    Task, TaskData, custom, limit_training, permuted_mnist, rotated_mnist, seed_sequence,
    split_mnist,
};
pub use transform::{pixel_permutation, rotate_image};

use crate::model::{IMAGE_PIXELS, IMAGE_SIDE};

/// Number of classes in every MNIST-family dataset; labels are 0 to `CLASS_COUNT - 1`.
pub const CLASS_COUNT: usize = 10;

/// Folder name of MNIST inside a data directory.
pub const MNIST: &str = "mnist";

/// Folder name of Fashion-MNIST inside a data directory.
pub const FASHION_MNIST: &str = "fashion-mnist";

/// Labelled images as read from disk: 28×28 unsigned bytes with labels 0–9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Name for logs and task names, such as `mnist`.
    pub name: String,
    /// Pixels of all images, `len() * rows * cols` bytes, image after image, each row-major.
    pub images: Vec<u8>,
    /// One label per image, each below [`CLASS_COUNT`].
    pub labels: Vec<u8>,
    /// Rows per image; 28 for every dataset this module loads.
    pub rows: usize,
    /// Columns per image; 28 for every dataset this module loads.
    pub cols: usize,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Returns whether the dataset contains no images; the loaders never return an empty one.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels of image `index`.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn image(&self, index: usize) -> &[u8] {
        let size = self.rows * self.cols;
        &self.images[index * size..(index + 1) * size]
    }

    /// Number of images of each class, indexed by label.
    pub fn class_counts(&self) -> [usize; CLASS_COUNT] {
        let mut counts = [0; CLASS_COUNT];
        for &label in &self.labels {
            if let Some(count) = counts.get_mut(usize::from(label)) {
                *count += 1;
            }
        }
        counts
    }

    /// Returns whether the images have the size that the networks take.
    fn has_network_size(&self) -> bool {
        self.rows == IMAGE_SIDE
            && self.cols == IMAGE_SIDE
            && self.images.len() == self.len() * IMAGE_PIXELS
    }
}

/// The training and test splits of one dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetPair {
    /// Training split (`train-*` files).
    pub train: Dataset,
    /// Test split (`t10k-*` files).
    pub test: Dataset,
}
