//! Mini-batches: an epoch's order of images, and the `f32` images and `u32` targets of one
//! batch, ready for upload.

use crate::model::IMAGE_PIXELS;
use crate::rng::Rng;

use super::{Task, TaskData};

/// Returns the indices `0..n` in a random order drawn from `rng`: one epoch's visiting order.
///
/// # Panics
/// If `n` does not fit in `u32`.
pub fn shuffled_order(n: usize, rng: &mut Rng) -> Vec<u32> {
    let count = u32::try_from(n).unwrap_or_else(|_| panic!("{n} images do not fit in u32 indices"));
    let mut order: Vec<u32> = (0..count).collect();
    rng.shuffle(&mut order);
    order
}

/// Fills `images` with the pixels of the images at `indices`, scaled to [0, 1] by dividing by
/// 255, and `targets` with their output units from [`Task::target_of`]. Both vectors are
/// cleared first and keep their capacity, so one pair can serve every batch.
///
/// # Panics
/// If an index is out of range for `data`, or, with a per-task head, a label is not one of
/// `task`'s classes.
pub fn fill_batch(
    data: &TaskData,
    indices: &[u32],
    task: &Task,
    per_task_head: bool,
    images: &mut Vec<f32>,
    targets: &mut Vec<u32>,
) {
    images.clear();
    targets.clear();
    images.reserve(indices.len() * IMAGE_PIXELS);
    targets.reserve(indices.len());

    for &index in indices {
        let index = index as usize;
        images.extend(
            data.image(index)
                .iter()
                .map(|&pixel| f32::from(pixel) / 255.0),
        );
        targets.push(task.target_of(data.labels[index], per_task_head));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_digit_task() -> Task {
        let mut images = vec![0u8; IMAGE_PIXELS];
        images.extend(vec![255u8; IMAGE_PIXELS]);
        images.extend(vec![51u8; IMAGE_PIXELS]);
        let data = TaskData {
            images,
            labels: vec![6, 7, 7],
        };
        Task {
            name: "split-6-7".to_owned(),
            classes: vec![6, 7],
            train: data.clone(),
            test: data,
        }
    }

    #[test]
    fn shuffled_order_is_a_seeded_permutation() {
        let order = shuffled_order(100, &mut Rng::new(3));
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<u32>>(), "every index once");
        assert_eq!(
            order,
            shuffled_order(100, &mut Rng::new(3)),
            "same seed, same order"
        );
        assert_ne!(
            order,
            shuffled_order(100, &mut Rng::new(4)),
            "different seed, different order"
        );
    }

    #[test]
    fn fill_batch_scales_pixels_to_unit_range() {
        let task = two_digit_task();
        let (mut images, mut targets) = (Vec::new(), Vec::new());
        fill_batch(
            &task.train,
            &[1, 2, 0],
            &task,
            false,
            &mut images,
            &mut targets,
        );

        assert_eq!(images.len(), 3 * IMAGE_PIXELS, "batch pixel count");
        assert_eq!(images[0], 1.0, "255 becomes 1");
        assert_eq!(images[IMAGE_PIXELS], 0.2, "51 becomes 0.2");
        assert_eq!(images[2 * IMAGE_PIXELS], 0.0, "0 stays 0");
        assert_eq!(targets, vec![7, 7, 6], "shared-head targets are the labels");
    }

    #[test]
    fn fill_batch_maps_labels_for_per_task_head() {
        let task = two_digit_task();
        let (mut images, mut targets) = (vec![9.0; 5], vec![99]);
        fill_batch(&task.train, &[0, 1], &task, true, &mut images, &mut targets);

        assert_eq!(
            targets,
            vec![0, 1],
            "per-task targets index the task's classes"
        );
        assert_eq!(images.len(), 2 * IMAGE_PIXELS, "old contents are cleared");
    }
}
