//! Loading an images file and a labels file into a checked [`Dataset`].
//!
//! Both headers are read and checked against each other before either body is read, so a
//! swapped pair or a mismatched count is reported without decompressing the images.

use std::path::{Path, PathBuf};

use log::debug;

use super::idx::{ElementType, IdxHeader, IdxReader};
use super::{CLASS_COUNT, DataError, Dataset, DatasetPair};
use crate::model::IMAGE_SIDE;

/// Loads an IDX images file (rank 3, 28×28 unsigned bytes) and its IDX labels file (rank 1,
/// unsigned bytes 0–9). Either file may be raw or gzip; the content decides, not the name.
///
/// The dataset is named after the images file's folder, or the file itself if it has none.
///
/// # Errors
/// Any reader error of either file, [`DataError::WrongKind`] for a labels file where images
/// belong or the reverse, [`DataError::UnsupportedElementType`], [`DataError::WrongImageSize`],
/// [`DataError::NoItems`], [`DataError::CountMismatch`] and [`DataError::LabelOutOfRange`].
pub fn load_idx_pair(images: &Path, labels: &Path) -> Result<Dataset, DataError> {
    let image_reader = IdxReader::open(images)?;
    let (rows, cols) = check_images_header(images, image_reader.header())?;
    let label_reader = IdxReader::open(labels)?;
    check_labels_header(labels, label_reader.header())?;
    check_counts(images, image_reader.header(), labels, label_reader.header())?;

    let pixels = image_reader.read_data()?;
    let label_bytes = label_reader.read_data()?;
    check_label_values(labels, &label_bytes)?;

    Ok(Dataset {
        name: dataset_name(images),
        images: pixels,
        labels: label_bytes,
        rows,
        cols,
    })
}

/// Loads the training and test splits from a folder with the four MNIST file names.
///
/// Each file may be gzip (`train-images-idx3-ubyte.gz`), uncompressed
/// (`train-images-idx3-ubyte`), or uncompressed with the dot that some mirrors use
/// (`train-images.idx3-ubyte`). The first of these names that exists is read. Both splits are
/// named `name`.
///
/// # Errors
/// [`DataError::MissingFile`] naming the folder and the names tried, or any error of
/// [`load_idx_pair`].
pub fn load_mnist_dir(dir: &Path, name: &str) -> Result<DatasetPair, DataError> {
    let train = load_split(dir, name, "train")?;
    let test = load_split(dir, name, "t10k")?;
    Ok(DatasetPair { train, test })
}

/// Returns the number of training images in a folder with the MNIST file names, from the
/// images file's header alone.
///
/// # Errors
/// [`DataError::MissingFile`] or an error of [`IdxReader::open`].
pub fn training_image_count(dir: &Path) -> Result<usize, DataError> {
    let images = find_file(dir, "train", "images", 3)?;
    Ok(IdxReader::open(&images)?.header().items() as usize)
}

fn load_split(dir: &Path, name: &str, split: &str) -> Result<Dataset, DataError> {
    let images = find_file(dir, split, "images", 3)?;
    let labels = find_file(dir, split, "labels", 1)?;
    debug!("loading {} and {}", images.display(), labels.display());
    let mut dataset = load_idx_pair(&images, &labels)?;
    dataset.name = name.to_owned();
    Ok(dataset)
}

/// Finds the first existing name of one MNIST file, such as `train-labels-idx1-ubyte.gz`.
fn find_file(dir: &Path, split: &str, kind: &str, rank: u8) -> Result<PathBuf, DataError> {
    let names = [
        format!("{split}-{kind}-idx{rank}-ubyte.gz"),
        format!("{split}-{kind}-idx{rank}-ubyte"),
        format!("{split}-{kind}.idx{rank}-ubyte"),
    ];
    names
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| DataError::MissingFile {
            dir: dir.to_owned(),
            names: names.to_vec(),
        })
}

/// Returns rows and columns after checking that the header describes 28×28 unsigned-byte
/// images.
fn check_images_header(path: &Path, header: &IdxHeader) -> Result<(usize, usize), DataError> {
    check_unsigned_bytes(path, header)?;
    let &[items, rows, cols] = header.dims.as_slice() else {
        let expected = "an images file (IDX rank 3: count×rows×columns)";
        return Err(DataError::WrongKind {
            path: path.to_owned(),
            expected,
            dims: header.dims.clone(),
        });
    };
    if items == 0 {
        return Err(DataError::NoItems {
            path: path.to_owned(),
        });
    }
    let side = IMAGE_SIDE as u32;
    if rows != side || cols != side {
        return Err(DataError::WrongImageSize {
            path: path.to_owned(),
            rows,
            cols,
            expected: IMAGE_SIDE,
        });
    }
    Ok((IMAGE_SIDE, IMAGE_SIDE))
}

fn check_labels_header(path: &Path, header: &IdxHeader) -> Result<(), DataError> {
    check_unsigned_bytes(path, header)?;
    let &[items] = header.dims.as_slice() else {
        let expected = "a labels file (IDX rank 1: count)";
        return Err(DataError::WrongKind {
            path: path.to_owned(),
            expected,
            dims: header.dims.clone(),
        });
    };
    if items == 0 {
        return Err(DataError::NoItems {
            path: path.to_owned(),
        });
    }
    Ok(())
}

fn check_unsigned_bytes(path: &Path, header: &IdxHeader) -> Result<(), DataError> {
    let element = header.element_type;
    if element == ElementType::U8 {
        return Ok(());
    }
    Err(DataError::UnsupportedElementType {
        path: path.to_owned(),
        code: element.code(),
        name: element.name(),
    })
}

fn check_counts(
    images_path: &Path,
    images: &IdxHeader,
    labels_path: &Path,
    labels: &IdxHeader,
) -> Result<(), DataError> {
    if images.items() == labels.items() {
        return Ok(());
    }
    Err(DataError::CountMismatch {
        labels_path: labels_path.to_owned(),
        images_path: images_path.to_owned(),
        labels: labels.items() as usize,
        images: images.items() as usize,
    })
}

/// Rejects the first label that is not a class index.
pub(crate) fn check_label_values(path: &Path, labels: &[u8]) -> Result<(), DataError> {
    let max = (CLASS_COUNT - 1) as u8;
    match labels.iter().position(|&label| label > max) {
        None => Ok(()),
        Some(item) => Err(DataError::LabelOutOfRange {
            path: path.to_owned(),
            item,
            label: labels[item],
            max,
        }),
    }
}

/// Names a dataset after its folder (`…/mnist/train-images-idx3-ubyte.gz` gives `mnist`).
fn dataset_name(images: &Path) -> String {
    let folder = images.parent().and_then(Path::file_name);
    let name = folder.or_else(|| images.file_name());
    name.map_or_else(
        || images.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_files::{TempDir, gzip, idx_bytes, image_pixels, images_idx, labels_idx};

    fn load_error(images: &Path, labels: &Path) -> DataError {
        match load_idx_pair(images, labels) {
            Ok(dataset) => panic!("pair was accepted with {} items", dataset.len()),
            Err(error) => error,
        }
    }

    #[test]
    fn raw_pair_loads() {
        let dir = TempDir::new("load-raw");
        let images = dir.write("digits/images", &images_idx(3));
        let labels = dir.write("digits/labels", &labels_idx(&[0, 9, 5]));

        let dataset = load_idx_pair(&images, &labels).expect("load raw pair");
        assert_eq!(dataset.len(), 3, "item count");
        assert_eq!((dataset.rows, dataset.cols), (28, 28), "image size");
        assert_eq!(dataset.labels, vec![0, 9, 5], "labels");
        assert_eq!(dataset.images, image_pixels(3), "pixels");
        assert_eq!(dataset.name, "digits", "name from the folder");
    }

    #[test]
    fn gzip_pair_loads() {
        let dir = TempDir::new("load-gzip");
        let images = dir.write("images.gz", &gzip(&images_idx(4)));
        let labels = dir.write("labels.gz", &gzip(&labels_idx(&[1, 2, 3, 4])));

        let dataset = load_idx_pair(&images, &labels).expect("load gzip pair");
        assert_eq!(dataset.labels, vec![1, 2, 3, 4], "labels");
        assert_eq!(dataset.image(3), &image_pixels(4)[3 * 784..], "last image");
    }

    #[test]
    fn images_file_where_labels_expected_is_rejected() {
        let dir = TempDir::new("load-swap");
        let images = dir.write("images", &images_idx(2));
        let labels = dir.write("labels", &labels_idx(&[1, 2]));

        let error = load_error(&labels, &images);
        let DataError::WrongKind {
            path,
            expected,
            dims,
        } = error
        else {
            panic!("expected WrongKind, got {error:?}");
        };
        assert_eq!(
            path, labels,
            "the labels file, given as images, is reported first"
        );
        assert!(expected.contains("images file"), "expected {expected:?}");
        assert_eq!(dims, vec![2], "dims found");
    }

    #[test]
    fn labels_file_where_images_expected_is_rejected() {
        let dir = TempDir::new("load-swap2");
        let images = dir.write("images", &images_idx(2));
        let other_images = dir.write("more-images", &images_idx(2));

        let error = load_error(&images, &other_images);
        let message = error.to_string();
        assert!(
            matches!(error, DataError::WrongKind { .. }),
            "expected WrongKind, got {error:?}"
        );
        assert!(
            message.contains("expected a labels file"),
            "message {message}"
        );
        assert!(
            message.contains("2×28×28"),
            "message {message} gives the shape"
        );
    }

    #[test]
    fn count_mismatch_names_both_counts_and_labels_file() {
        let dir = TempDir::new("load-count");
        let images = dir.write("train-images-idx3-ubyte.gz", &gzip(&images_idx(4)));
        let labels = dir.write("train-labels-idx1-ubyte.gz", &gzip(&labels_idx(&[1, 2, 3])));

        let error = load_error(&images, &labels);
        let expected = format!(
            "labels file has 3 entries but images file has 4 ({})",
            labels.display()
        );
        assert_eq!(error.to_string(), expected, "count mismatch message");
    }

    #[test]
    fn label_outside_classes_is_rejected() {
        let dir = TempDir::new("load-label");
        let images = dir.write("images", &images_idx(3));
        let labels = dir.write("labels", &labels_idx(&[1, 10, 2]));

        let error = load_error(&images, &labels);
        let DataError::LabelOutOfRange {
            item, label, max, ..
        } = error
        else {
            panic!("expected LabelOutOfRange, got {error:?}");
        };
        assert_eq!(
            (item, label, max),
            (1, 10, 9),
            "item, label and largest class"
        );
    }

    #[test]
    fn images_not_28_by_28_are_rejected() {
        let dir = TempDir::new("load-size");
        let images = dir.write("images", &idx_bytes(0x08, &[2, 32, 32], &[0; 2 * 32 * 32]));
        let labels = dir.write("labels", &labels_idx(&[1, 2]));

        let error = load_error(&images, &labels);
        assert!(
            matches!(
                error,
                DataError::WrongImageSize {
                    rows: 32,
                    cols: 32,
                    expected: 28,
                    ..
                }
            ),
            "expected WrongImageSize 32×32, got {error:?}"
        );
        assert!(
            error.to_string().contains("32×32 but 28×28 is needed"),
            "message {error}"
        );
    }

    #[test]
    fn float_images_are_rejected_naming_the_type() {
        let dir = TempDir::new("load-f32");
        let images = dir.write("images", &idx_bytes(0x0D, &[1, 28, 28], &[0; 4 * 784]));
        let labels = dir.write("labels", &labels_idx(&[1]));

        let error = load_error(&images, &labels);
        assert!(
            matches!(
                error,
                DataError::UnsupportedElementType {
                    code: 0x0D,
                    name: "f32",
                    ..
                }
            ),
            "expected UnsupportedElementType f32, got {error:?}"
        );
        assert!(error.to_string().contains("0x0D (f32)"), "message {error}");
    }

    #[test]
    fn zero_items_are_rejected() {
        let dir = TempDir::new("load-zero");
        let images = dir.write("images", &images_idx(0));
        let labels = dir.write("labels", &labels_idx(&[]));

        let error = load_error(&images, &labels);
        assert!(
            matches!(error, DataError::NoItems { .. }),
            "expected NoItems, got {error:?}"
        );
    }

    #[test]
    fn mnist_dir_accepts_gzip_and_uncompressed_names() {
        let dir = TempDir::new("load-dir");
        dir.write("train-images-idx3-ubyte.gz", &gzip(&images_idx(2)));
        dir.write("train-labels-idx1-ubyte", &labels_idx(&[3, 4]));
        dir.write("t10k-images.idx3-ubyte", &images_idx(1));
        dir.write("t10k-labels-idx1-ubyte.gz", &gzip(&labels_idx(&[5])));

        let pair = load_mnist_dir(dir.path(), "digits").expect("load folder");
        assert_eq!(pair.train.labels, vec![3, 4], "training labels");
        assert_eq!(pair.test.labels, vec![5], "test labels");
        assert_eq!(pair.train.name, "digits", "training split name");
        assert_eq!(pair.test.name, "digits", "test split name");
    }

    #[test]
    fn mnist_dir_missing_file_says_which_and_where() {
        let dir = TempDir::new("load-missing");
        dir.write("train-images-idx3-ubyte.gz", &gzip(&images_idx(1)));

        let error = load_mnist_dir(dir.path(), "digits").expect_err("labels are missing");
        let message = error.to_string();
        assert!(
            matches!(error, DataError::MissingFile { .. }),
            "expected MissingFile, got {error:?}"
        );
        assert!(
            message.contains("train-labels-idx1-ubyte.gz or train-labels-idx1-ubyte"),
            "message {message}"
        );
        assert!(
            message.contains(&dir.path().display().to_string()),
            "message {message} names the folder"
        );
    }
}
