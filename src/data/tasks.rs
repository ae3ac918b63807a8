//! Task sequences: the datasets a continual learner meets one after the other.
//!
//! Every builder returns tasks whose images are already transformed (permuted, rotated or
//! filtered), so the trainer never transforms on the fly. Labels always stay the original
//! digits or clothing classes. [`Task::target_of`] maps them to the output unit, which depends
//! on whether the network has one shared head or one head per task.
//!
//! Each task owns its images. A ten-task Permuted MNIST therefore contains ten transformed copies
//! of MNIST, about 550 MB as `u8`. That is the price of never transforming during training.

use crate::model::IMAGE_PIXELS;
use crate::rng::Rng;

use super::transform::{permute_images, rotate_images};
use super::{CLASS_COUNT, Dataset, DatasetPair, FASHION_MNIST, MNIST, pixel_permutation};

/// Images and labels of one split of a task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskData {
    /// Pixels, 784 bytes per image (28×28 row-major), transforms already applied.
    pub images: Vec<u8>,
    /// Original labels (digit or clothing class), one per image.
    pub labels: Vec<u8>,
}

impl TaskData {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Returns whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels of image `index`.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn image(&self, index: usize) -> &[u8] {
        &self.images[index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS]
    }

    fn from_owned_dataset(dataset: Dataset) -> Self {
        assert_network_size(&dataset);
        Self {
            images: dataset.images,
            labels: dataset.labels,
        }
    }

    /// Keeps the images whose label is in `classes`, in their original order.
    fn with_classes(dataset: &Dataset, classes: &[u8]) -> Self {
        assert_network_size(dataset);
        let kept: Vec<usize> = (0..dataset.len())
            .filter(|&i| classes.contains(&dataset.labels[i]))
            .collect();
        Self::gather(&dataset.images, &dataset.labels, &kept)
    }

    /// Copies the images at `indices`, in that order.
    fn gather(images: &[u8], labels: &[u8], indices: &[usize]) -> Self {
        let mut data = Self {
            images: Vec::with_capacity(indices.len() * IMAGE_PIXELS),
            labels: Vec::with_capacity(indices.len()),
        };
        for &i in indices {
            data.images
                .extend_from_slice(&images[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS]);
            data.labels.push(labels[i]);
        }
        data
    }

    fn map_images(dataset: &Dataset, transform: impl Fn(&[u8]) -> Vec<u8>) -> Self {
        assert_network_size(dataset);
        Self {
            images: transform(&dataset.images),
            labels: dataset.labels.clone(),
        }
    }
}

/// One task of a sequence: a name, the classes it uses, and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Short name for tables and plots, such as `perm-3` or `split-4-5`.
    pub name: String,
    /// Original labels this task uses, sorted and without repeats.
    pub classes: Vec<u8>,
    /// Training split.
    pub train: TaskData,
    /// Test split.
    pub test: TaskData,
}

impl Task {
    /// Returns the output unit that should fire for `label`: the label itself with one shared
    /// head over all ten classes, or the label's index in [`Task::classes`] with a head per
    /// task.
    ///
    /// # Panics
    /// With a per-task head, if `label` is not one of this task's classes. Labels from the
    /// task's own data always are.
    pub fn target_of(&self, label: u8, per_task_head: bool) -> u32 {
        if !per_task_head {
            return u32::from(label);
        }
        match self.classes.binary_search(&label) {
            Ok(index) => index as u32,
            Err(_) => panic!(
                "label {label} is not one of task {}'s classes {:?}",
                self.name, self.classes
            ),
        }
    }

    /// Number of output units the task's head needs: ten when shared, the task's class count
    /// when per task.
    pub fn head_outputs(&self, per_task_head: bool) -> usize {
        if per_task_head {
            self.classes.len()
        } else {
            CLASS_COUNT
        }
    }

    fn all_classes(name: &str, train: TaskData, test: TaskData) -> Self {
        let classes = (0..CLASS_COUNT as u8).collect();
        Self {
            name: name.to_owned(),
            classes,
            train,
            test,
        }
    }
}

/// Builds the two-task sequence MNIST then Fashion-MNIST, ten classes each. Both tasks use
/// labels 0–9, so with a shared head the same output units mean a digit in one task and a
/// clothing class in the other.
pub fn seed_sequence(mnist: DatasetPair, fashion: DatasetPair) -> Vec<Task> {
    vec![
        Task::all_classes(
            MNIST,
            TaskData::from_owned_dataset(mnist.train),
            TaskData::from_owned_dataset(mnist.test),
        ),
        Task::all_classes(
            FASHION_MNIST,
            TaskData::from_owned_dataset(fashion.train),
            TaskData::from_owned_dataset(fashion.test),
        ),
    ]
}

/// Builds Permuted MNIST: task `perm-1` is plain MNIST, and each later task applies its own
/// fixed pixel permutation from [`pixel_permutation`] to both splits.
pub fn permuted_mnist(mnist: &DatasetPair, n_tasks: usize, seed: u64) -> Vec<Task> {
    (0..n_tasks)
        .map(|task| {
            let permutation = pixel_permutation(seed, task);
            let permute = |images: &[u8]| permute_images(images, &permutation);
            let train = TaskData::map_images(&mnist.train, permute);
            let test = TaskData::map_images(&mnist.test, permute);
            Task::all_classes(&format!("perm-{}", task + 1), train, test)
        })
        .collect()
}

/// Builds Split MNIST: five tasks of two digits each, {0,1}, {2,3}, {4,5}, {6,7}, {8,9},
/// named `split-0-1` and so on.
pub fn split_mnist(mnist: &DatasetPair) -> Vec<Task> {
    (0..CLASS_COUNT as u8)
        .step_by(2)
        .map(|first| {
            let classes = vec![first, first + 1];
            Task {
                name: format!("split-{}-{}", first, first + 1),
                train: TaskData::with_classes(&mnist.train, &classes),
                test: TaskData::with_classes(&mnist.test, &classes),
                classes,
            }
        })
        .collect()
}

/// Builds Rotated MNIST: one task per angle, every image rotated by that many degrees
/// counter-clockwise (see [`super::rotate_image`]), named `rot-45` and so on.
pub fn rotated_mnist(mnist: &DatasetPair, angles_degrees: &[f32]) -> Vec<Task> {
    angles_degrees
        .iter()
        .map(|&degrees| {
            let rotate = |images: &[u8]| rotate_images(images, degrees);
            let train = TaskData::map_images(&mnist.train, rotate);
            let test = TaskData::map_images(&mnist.test, rotate);
            Task::all_classes(&format!("rot-{degrees}"), train, test)
        })
        .collect()
}

/// Builds one task per named dataset, in the order given. A task's classes are the labels
/// that occur in either of its splits.
///
/// # Panics
/// If a dataset's images are not 28×28; every loader in this module guarantees that they are.
pub fn custom(datasets: Vec<(String, DatasetPair)>) -> Vec<Task> {
    datasets
        .into_iter()
        .map(|(name, pair)| {
            let classes = classes_present(&[&pair.train.labels, &pair.test.labels]);
            let train = TaskData::from_owned_dataset(pair.train);
            let test = TaskData::from_owned_dataset(pair.test);
            Task {
                name,
                classes,
                train,
                test,
            }
        })
        .collect()
}

/// Caps every task's training split at `limit` images; `None` keeps everything. Test splits
/// are left whole.
///
/// The subset is class-balanced. The classes present share the limit evenly, and when it does
/// not divide, the lowest labels take one extra image each. A class with too few images gives
/// all it has, and the others make up the difference. Which images of a class are kept is a
/// random choice drawn from `seed` and the task's position, and kept images keep their order.
pub fn limit_training(tasks: &mut [Task], limit: Option<usize>, seed: u64) {
    let Some(limit) = limit else { return };
    for (index, task) in tasks.iter_mut().enumerate() {
        if task.train.len() <= limit {
            continue;
        }
        let mut rng = Rng::derive(seed, &format!("training limit, task {index}"));
        let kept = balanced_subset(&task.train.labels, limit, &mut rng);
        task.train = TaskData::gather(&task.train.images, &task.train.labels, &kept);
    }
}

/// Chooses `limit` indices spread as evenly over the classes as their sizes allow; returns
/// them sorted.
fn balanced_subset(labels: &[u8], limit: usize, rng: &mut Rng) -> Vec<usize> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); 256];
    for (index, &label) in labels.iter().enumerate() {
        by_class[usize::from(label)].push(index);
    }
    let mut pools: Vec<Vec<usize>> = by_class
        .into_iter()
        .filter(|pool| !pool.is_empty())
        .collect();
    for pool in &mut pools {
        rng.shuffle(pool);
    }

    // Deal one image per class in turn, skipping classes that have run out.
    let mut taken_per_class = vec![0; pools.len()];
    let mut total = 0;
    while total < limit.min(labels.len()) {
        for (pool, count) in pools.iter().zip(taken_per_class.iter_mut()) {
            if total < limit && *count < pool.len() {
                *count += 1;
                total += 1;
            }
        }
    }

    let mut kept_indices: Vec<usize> = pools
        .iter()
        .zip(&taken_per_class)
        .flat_map(|(pool, &count)| pool[..count].iter().copied())
        .collect();
    kept_indices.sort_unstable();
    kept_indices
}

fn classes_present(label_sets: &[&[u8]]) -> Vec<u8> {
    let mut present = [false; 256];
    for labels in label_sets {
        for &label in labels.iter() {
            present[usize::from(label)] = true;
        }
    }
    (0..=255u8)
        .filter(|&label| present[usize::from(label)])
        .collect()
}

fn assert_network_size(dataset: &Dataset) {
    assert!(
        dataset.has_network_size(),
        "dataset {} has {}×{} images; tasks need 28×28",
        dataset.name,
        dataset.rows,
        dataset.cols
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::rotate_image;

    /// Builds a dataset whose image `i` has pixel `p` equal to `(i + p) % 256`, so every image and
    /// every pixel position is distinguishable.
    fn toy_dataset(labels: &[u8]) -> Dataset {
        let images = (0..labels.len() * IMAGE_PIXELS)
            .map(|k| ((k / IMAGE_PIXELS + k % IMAGE_PIXELS) % 256) as u8)
            .collect();
        Dataset {
            name: "toy".to_owned(),
            images,
            labels: labels.to_vec(),
            rows: 28,
            cols: 28,
        }
    }

    /// Builds a pair with every digit `per_class` times in training and once in test, cycling
    /// 0..9.
    fn toy_pair(per_class: usize) -> DatasetPair {
        let train: Vec<u8> = (0..10 * per_class).map(|i| (i % 10) as u8).collect();
        let test: Vec<u8> = (0..10).collect();
        DatasetPair {
            train: toy_dataset(&train),
            test: toy_dataset(&test),
        }
    }

    #[test]
    fn seed_sequence_is_mnist_then_fashion() {
        let tasks = seed_sequence(toy_pair(2), toy_pair(3));
        let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["mnist", "fashion-mnist"], "task order");
        assert_eq!(tasks[0].train.len(), 20, "MNIST training images");
        assert_eq!(tasks[1].train.len(), 30, "Fashion-MNIST training images");
        for task in &tasks {
            assert_eq!(
                task.classes,
                (0..10).collect::<Vec<u8>>(),
                "{}: all ten classes",
                task.name
            );
        }
    }

    #[test]
    fn permuted_mnist_applies_each_tasks_permutation() {
        let pair = toy_pair(1);
        let tasks = permuted_mnist(&pair, 3, 9);
        assert_eq!(tasks.len(), 3, "task count");
        assert_eq!(tasks[0].name, "perm-1", "first task name");
        assert_eq!(
            tasks[0].train.images, pair.train.images,
            "first task is unpermuted"
        );

        for (index, task) in tasks.iter().enumerate() {
            let permutation = pixel_permutation(9, index);
            for (i, &source) in permutation.iter().enumerate().step_by(37) {
                assert_eq!(
                    task.test.image(4)[i],
                    pair.test.image(4)[source],
                    "task {index}, pixel {i}"
                );
            }
            assert_eq!(
                task.train.labels, pair.train.labels,
                "task {index}: labels unchanged"
            );
        }
        assert_ne!(
            tasks[1].train.images, tasks[2].train.images,
            "tasks 2 and 3 differ"
        );
    }

    #[test]
    fn split_mnist_tasks_hold_exactly_their_two_digits() {
        let tasks = split_mnist(&toy_pair(3));
        assert_eq!(tasks.len(), 5, "task count");
        for (index, task) in tasks.iter().enumerate() {
            let first = 2 * index as u8;
            assert_eq!(
                task.classes,
                vec![first, first + 1],
                "task {index}: classes"
            );
            assert_eq!(
                task.name,
                format!("split-{}-{}", first, first + 1),
                "task {index}: name"
            );
            assert_eq!(
                task.train.len(),
                6,
                "task {index}: three training images per digit"
            );
            assert_eq!(task.test.len(), 2, "task {index}: one test image per digit");
            for data in [&task.train, &task.test] {
                assert!(
                    data.labels.iter().all(|l| task.classes.contains(l)),
                    "task {index}: labels {:?}",
                    data.labels
                );
            }
        }
    }

    #[test]
    fn split_mnist_keeps_images_with_their_labels() {
        let pair = toy_pair(2);
        let tasks = split_mnist(&pair);
        // Digit 3 is at training indices 3 and 13 of the toy set.
        assert_eq!(tasks[1].train.labels, vec![2, 3, 2, 3], "labels of task 2");
        assert_eq!(
            tasks[1].train.image(1),
            pair.train.image(3),
            "first image of digit 3"
        );
        assert_eq!(
            tasks[1].train.image(3),
            pair.train.image(13),
            "second image of digit 3"
        );
    }

    #[test]
    fn rotated_mnist_rotates_every_image() {
        let pair = toy_pair(1);
        let tasks = rotated_mnist(&pair, &[0.0, 90.0]);
        let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["rot-0", "rot-90"], "task names");
        assert_eq!(
            tasks[0].train.images, pair.train.images,
            "0° task is unchanged"
        );
        for i in 0..pair.test.len() {
            assert_eq!(
                tasks[1].test.image(i),
                rotate_image(pair.test.image(i), 90.0),
                "test image {i}"
            );
        }
    }

    #[test]
    fn custom_classes_are_the_labels_present() {
        let pair = DatasetPair {
            train: toy_dataset(&[5, 3, 5]),
            test: toy_dataset(&[7]),
        };
        let tasks = custom(vec![("letters".to_owned(), pair)]);
        assert_eq!(tasks[0].name, "letters", "name");
        assert_eq!(
            tasks[0].classes,
            vec![3, 5, 7],
            "sorted union of training and test labels"
        );
    }

    #[test]
    fn target_is_label_with_shared_head() {
        let task = &split_mnist(&toy_pair(1))[2];
        assert_eq!(task.target_of(4, false), 4, "label 4, shared head");
        assert_eq!(task.target_of(5, false), 5, "label 5, shared head");
        assert_eq!(task.head_outputs(false), 10, "shared head width");
    }

    #[test]
    fn target_is_class_index_with_per_task_head() {
        let task = &split_mnist(&toy_pair(1))[2];
        assert_eq!(task.target_of(4, true), 0, "label 4 in task {{4, 5}}");
        assert_eq!(task.target_of(5, true), 1, "label 5 in task {{4, 5}}");
        assert_eq!(task.head_outputs(true), 2, "per-task head width");
    }

    #[test]
    #[should_panic(expected = "label 7 is not one of task split-4-5's classes")]
    fn target_outside_task_classes_panics() {
        split_mnist(&toy_pair(1))[2].target_of(7, true);
    }

    #[test]
    fn limit_takes_a_class_balanced_subset() {
        let mut tasks = seed_sequence(toy_pair(20), toy_pair(20));
        limit_training(&mut tasks, Some(25), 1);
        for task in &tasks {
            assert_eq!(task.train.len(), 25, "{}: training images", task.name);
            let mut counts = [0; 10];
            for &label in &task.train.labels {
                counts[usize::from(label)] += 1;
            }
            assert_eq!(
                counts,
                [3, 3, 3, 3, 3, 2, 2, 2, 2, 2],
                "{}: images per class",
                task.name
            );
            assert_eq!(task.test.len(), 10, "{}: test split untouched", task.name);
        }
    }

    #[test]
    fn limit_makes_up_for_small_classes() {
        // Digit 0 has one image, the others four each.
        let labels: Vec<u8> = std::iter::once(0)
            .chain((1..10).flat_map(|d| [d; 4]))
            .collect();
        let pair = DatasetPair {
            train: toy_dataset(&labels),
            test: toy_dataset(&[0]),
        };
        let mut tasks = custom(vec![("uneven".to_owned(), pair)]);
        limit_training(&mut tasks, Some(28), 1);

        let train = &tasks[0].train;
        assert_eq!(train.len(), 28, "training images");
        assert_eq!(
            train.labels.iter().filter(|&&l| l == 0).count(),
            1,
            "the one image of digit 0"
        );
    }

    #[test]
    fn limit_is_seeded_and_keeps_order() {
        let limited = |seed| {
            let mut tasks = seed_sequence(toy_pair(20), toy_pair(20));
            limit_training(&mut tasks, Some(30), seed);
            tasks
        };
        let (a, b, c) = (limited(4), limited(4), limited(5));
        assert_eq!(a, b, "same seed, same subset");
        assert_ne!(a[0].train, c[0].train, "different seed, different subset");
        assert_ne!(a[0].train, a[1].train, "tasks draw different subsets");

        // Image i of the toy set starts with pixel value i % 256, and 200 < 256, so the first
        // pixels reveal the kept indices.
        let kept: Vec<u8> = (0..a[0].train.len())
            .map(|i| a[0].train.image(i)[0])
            .collect();
        assert!(
            kept.windows(2).all(|w| w[0] < w[1]),
            "kept images stay in order: {kept:?}"
        );
    }

    #[test]
    fn no_limit_or_large_limit_changes_nothing() {
        let original = seed_sequence(toy_pair(2), toy_pair(2));
        for limit in [None, Some(20), Some(1000)] {
            let mut tasks = original.clone();
            limit_training(&mut tasks, limit, 1);
            assert_eq!(tasks, original, "limit {limit:?}");
        }
    }

    #[test]
    #[should_panic(expected = "tasks need 28×28")]
    fn wrong_image_size_panics_in_builders() {
        let mut dataset = toy_dataset(&[1]);
        dataset.rows = 32;
        split_mnist(&DatasetPair {
            train: dataset.clone(),
            test: dataset,
        });
    }
}
