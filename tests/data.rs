//! The bundled dataset subsets, read through the public data API.

use std::path::{Path, PathBuf};

use ewc_workbench::data::{
    self, CLASS_COUNT, Compression, DatasetPair, FileFormat, HowFound, inspect, load_dataset,
    load_mnist_dir, locate_dataset,
};

fn bundled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets")
}

fn load_bundled(dataset: &str) -> DatasetPair {
    load_mnist_dir(&bundled_dir().join(dataset), dataset)
        .unwrap_or_else(|error| panic!("bundled {dataset} failed to load: {error}"))
}

#[test]
fn bundled_subsets_have_200_and_100_per_class() {
    for dataset in [data::MNIST, data::FASHION_MNIST] {
        let pair = load_bundled(dataset);
        assert_eq!(pair.train.len(), 2000, "{dataset}: training images");
        assert_eq!(pair.test.len(), 1000, "{dataset}: test images");
        assert_eq!(
            pair.train.class_counts(),
            [200; CLASS_COUNT],
            "{dataset}: training images per class"
        );
        assert_eq!(
            pair.test.class_counts(),
            [100; CLASS_COUNT],
            "{dataset}: test images per class"
        );
    }
}

#[test]
fn bundled_images_are_not_blank() {
    for dataset in [data::MNIST, data::FASHION_MNIST] {
        let pair = load_bundled(dataset);
        for index in [0, 999, 1999] {
            let lit = pair
                .train
                .image(index)
                .iter()
                .filter(|&&pixel| pixel > 0)
                .count();
            assert!(
                lit > 50,
                "{dataset}: training image {index} has only {lit} non-zero pixels"
            );
        }
    }
}

#[test]
fn bundled_subsets_differ_between_datasets() {
    let mnist = load_bundled(data::MNIST);
    let fashion = load_bundled(data::FASHION_MNIST);
    assert_ne!(
        mnist.train.images, fashion.train.images,
        "MNIST and Fashion-MNIST pixels"
    );
}

#[test]
fn data_dir_option_is_used_for_each_dataset() {
    let dir = bundled_dir();
    for dataset in [data::MNIST, data::FASHION_MNIST] {
        let source = locate_dataset(Some(&dir), dataset).expect("dataset in the chosen folder");
        assert_eq!(source.dir, dir, "{dataset}: folder");
        assert_eq!(source.how_found, HowFound::CommandLine, "{dataset}: origin");
    }
    let pair = load_dataset(Some(&dir), data::MNIST).expect("load through the data dir");
    assert_eq!(pair.train.name, data::MNIST, "dataset name");
}

#[test]
fn missing_data_dir_option_is_an_error() {
    let dir = bundled_dir().join("no-such-folder");
    let error = load_dataset(Some(&dir), data::MNIST).expect_err("folder does not exist");
    let message = error.to_string();
    assert!(
        message.contains("no-such-folder"),
        "message {message} names the folder"
    );
}

#[test]
fn inspect_reports_bundled_labels() {
    let path = bundled_dir().join("mnist/t10k-labels-idx1-ubyte.gz");
    let report = inspect(&path).expect("inspect bundled labels");
    assert_eq!(
        report.format,
        FileFormat::Idx {
            compression: Compression::Gzip
        },
        "format"
    );
    assert_eq!(report.items, 1000, "items");
    let expected: Vec<(u8, usize)> = (0..10).map(|label| (label, 100)).collect();
    assert_eq!(report.class_counts, Some(expected), "counts per class");
}

#[test]
fn seed_sequence_builds_from_bundled_subsets() {
    let mut tasks =
        data::seed_sequence(load_bundled(data::MNIST), load_bundled(data::FASHION_MNIST));
    data::limit_training(&mut tasks, Some(500), 0);
    for task in &tasks {
        assert_eq!(
            task.train.len(),
            500,
            "{}: training images after the limit",
            task.name
        );
        assert_eq!(task.test.len(), 1000, "{}: test images", task.name);
    }
}
