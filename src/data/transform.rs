//! Pixel transforms that turn one dataset into several tasks: fixed permutations (Permuted
//! MNIST) and rotations (Rotated MNIST).
//!
//! Both are applied once, when tasks are built, so training reads plain images. Both act on
//! 28×28 images stored row-major, one byte per pixel.

use crate::model::{IMAGE_PIXELS, IMAGE_SIDE};
use crate::rng::Rng;

/// Returns the pixel permutation of Permuted MNIST task `task` (zero-based): the identity
/// for task 0, otherwise a uniform random permutation drawn from `seed` and `task` alone.
///
/// Output pixel `i` of a permuted image is input pixel `permutation[i]`.
pub fn pixel_permutation(seed: u64, task: usize) -> Vec<usize> {
    let mut permutation: Vec<usize> = (0..IMAGE_PIXELS).collect();
    if task > 0 {
        let mut rng = Rng::derive(seed, &format!("permuted-mnist task {task}"));
        rng.shuffle(&mut permutation);
    }
    permutation
}

/// Applies `permutation` to every image in `images`.
pub(crate) fn permute_images(images: &[u8], permutation: &[usize]) -> Vec<u8> {
    let mut permuted = Vec::with_capacity(images.len());
    for image in images.chunks_exact(IMAGE_PIXELS) {
        permuted.extend(permutation.iter().map(|&source| image[source]));
    }
    permuted
}

/// Rotates one 28×28 image by `degrees` about its centre, counter-clockwise as displayed
/// (row 0 at the top), with bilinear interpolation and black where the source falls outside.
///
/// # Panics
/// If `image` is not 784 bytes long.
pub fn rotate_image(image: &[u8], degrees: f32) -> Vec<u8> {
    assert_eq!(
        image.len(),
        IMAGE_PIXELS,
        "rotate_image takes one 28×28 image"
    );
    rotate_images(image, degrees)
}

/// Rotates every image in `images`; see [`rotate_image`].
pub(crate) fn rotate_images(images: &[u8], degrees: f32) -> Vec<u8> {
    assert_eq!(
        images.len() % IMAGE_PIXELS,
        0,
        "images must be whole 28×28 images"
    );
    let map = RotationMap::new(degrees);
    let mut rotated = Vec::with_capacity(images.len());
    for image in images.chunks_exact(IMAGE_PIXELS) {
        rotated.extend(map.taps.iter().map(|taps| map.sample(image, taps)));
    }
    rotated
}

/// Up to four source pixels and their bilinear weights for one output pixel.
type Taps = [(u16, f32); 4];

/// The bilinear taps of every output pixel for one angle, computed once and shared by all
/// images, so rotating a dataset costs four multiply-adds per pixel.
struct RotationMap {
    taps: Vec<Taps>,
}

impl RotationMap {
    fn new(degrees: f32) -> Self {
        let radians = f64::from(degrees).to_radians();
        let (sin, cos) = radians.sin_cos();
        let centre = (IMAGE_SIDE as f64 - 1.0) / 2.0;
        let mut taps = Vec::with_capacity(IMAGE_PIXELS);

        for row in 0..IMAGE_SIDE {
            for col in 0..IMAGE_SIDE {
                // Coordinates with y up, so a positive angle turns counter-clockwise on screen.
                let x = col as f64 - centre;
                let y = centre - row as f64;
                // The output pixel shows the source point rotated back by the angle.
                let source_x = x * cos + y * sin;
                let source_y = -x * sin + y * cos;
                taps.push(bilinear_taps(centre - source_y, source_x + centre));
            }
        }
        Self { taps }
    }

    fn sample(&self, image: &[u8], taps: &Taps) -> u8 {
        let value: f32 = taps
            .iter()
            .map(|&(index, weight)| weight * f32::from(image[usize::from(index)]))
            .sum();
        value.round().clamp(0.0, 255.0) as u8
    }
}

/// Bilinear taps at fractional (row, col); neighbours outside the image get weight zero,
/// which is the zero fill.
fn bilinear_taps(row: f64, col: f64) -> Taps {
    // Snap values within rounding error of a whole pixel, so 90° turns copy pixels exactly.
    let snap = |v: f64| {
        if (v - v.round()).abs() < 1e-9 {
            v.round()
        } else {
            v
        }
    };
    let (row, col) = (snap(row), snap(col));
    let (row0, col0) = (row.floor(), col.floor());
    let (fr, fc) = (row - row0, col - col0);

    let mut taps = [(0u16, 0.0f32); 4];
    let corners = [
        (0.0, 0.0, (1.0 - fr) * (1.0 - fc)),
        (0.0, 1.0, (1.0 - fr) * fc),
        (1.0, 0.0, fr * (1.0 - fc)),
        (1.0, 1.0, fr * fc),
    ];
    for (tap, (dr, dc, weight)) in taps.iter_mut().zip(corners) {
        let (r, c) = (row0 + dr, col0 + dc);
        let inside = (0.0..IMAGE_SIDE as f64).contains(&r) && (0.0..IMAGE_SIDE as f64).contains(&c);
        if inside && weight > 0.0 {
            *tap = ((r as usize * IMAGE_SIDE + c as usize) as u16, weight as f32);
        }
    }
    taps
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a pattern with no rotational symmetry: pixel (row, col) is `row * 28 + col` mod 251,
    /// plus one.
    fn asymmetric_image() -> Vec<u8> {
        (0..IMAGE_PIXELS).map(|i| (i % 251) as u8 + 1).collect()
    }

    #[test]
    fn permutation_is_a_bijection() {
        for task in 0..4 {
            let mut sorted = pixel_permutation(7, task);
            sorted.sort_unstable();
            assert_eq!(
                sorted,
                (0..IMAGE_PIXELS).collect::<Vec<_>>(),
                "task {task} permutes 0..784"
            );
        }
    }

    #[test]
    fn first_permutation_is_identity() {
        let identity: Vec<usize> = (0..IMAGE_PIXELS).collect();
        assert_eq!(
            pixel_permutation(7, 0),
            identity,
            "task 0 keeps pixels in place"
        );
    }

    #[test]
    fn permutation_repeats_for_same_seed() {
        assert_eq!(
            pixel_permutation(42, 3),
            pixel_permutation(42, 3),
            "same seed and task"
        );
    }

    #[test]
    fn permutation_differs_across_tasks_and_seeds() {
        assert_ne!(
            pixel_permutation(42, 1),
            pixel_permutation(42, 2),
            "tasks 1 and 2"
        );
        assert_ne!(
            pixel_permutation(42, 1),
            pixel_permutation(43, 1),
            "seeds 42 and 43"
        );
        let identity: Vec<usize> = (0..IMAGE_PIXELS).collect();
        assert_ne!(
            pixel_permutation(42, 1),
            identity,
            "task 1 is not the identity"
        );
    }

    #[test]
    fn permute_images_moves_pixels_by_the_permutation() {
        let image = asymmetric_image();
        let mut two_images = image.clone();
        two_images.extend(image.iter().map(|p| p / 2));
        let permutation = pixel_permutation(5, 1);

        let permuted = permute_images(&two_images, &permutation);
        for (i, &source) in permutation.iter().enumerate() {
            assert_eq!(permuted[i], image[source], "first image, output pixel {i}");
            assert_eq!(
                permuted[IMAGE_PIXELS + i],
                image[source] / 2,
                "second image, output pixel {i}"
            );
        }
    }

    #[test]
    fn rotation_by_zero_is_identity() {
        let image = asymmetric_image();
        assert_eq!(rotate_image(&image, 0.0), image, "0° rotation");
    }

    #[test]
    fn rotation_by_360_is_identity() {
        let image = asymmetric_image();
        assert_eq!(rotate_image(&image, 360.0), image, "360° rotation");
    }

    #[test]
    fn rotation_by_90_turns_counter_clockwise() {
        let image = asymmetric_image();
        let rotated = rotate_image(&image, 90.0);
        let last = IMAGE_SIDE - 1;
        for row in 0..IMAGE_SIDE {
            for col in 0..IMAGE_SIDE {
                // Counter-clockwise: the top-right corner moves to the top-left.
                let expected = image[col * IMAGE_SIDE + (last - row)];
                assert_eq!(
                    rotated[row * IMAGE_SIDE + col],
                    expected,
                    "pixel ({row}, {col})"
                );
            }
        }
    }

    #[test]
    fn rotation_moves_top_right_corner_to_top_left() {
        let mut image = vec![0; IMAGE_PIXELS];
        image[IMAGE_SIDE - 1] = 200;
        let rotated = rotate_image(&image, 90.0);
        assert_eq!(rotated[0], 200, "top-left pixel after a 90° turn");
        assert_eq!(
            rotated.iter().filter(|&&p| p > 0).count(),
            1,
            "one lit pixel"
        );
    }

    #[test]
    fn rotation_by_180_twice_is_identity() {
        let image = asymmetric_image();
        let once = rotate_image(&image, 180.0);
        assert_ne!(once, image, "a half turn changes an asymmetric image");
        assert_eq!(rotate_image(&once, 180.0), image, "two half turns");
    }

    #[test]
    fn rotation_fills_corners_with_zero() {
        let white = vec![255; IMAGE_PIXELS];
        let rotated = rotate_image(&white, 45.0);
        assert_eq!(
            rotated[0], 0,
            "top-left corner comes from outside the image"
        );
        assert_eq!(rotated[14 * IMAGE_SIDE + 14], 255, "centre stays white");
    }

    #[test]
    fn rotation_interpolates_between_pixels() {
        // A vertical edge: left half black, right half white. A small turn blurs the edge,
        // so some pixels fall strictly between black and white.
        let edge: Vec<u8> = (0..IMAGE_PIXELS)
            .map(|i| if i % IMAGE_SIDE >= 14 { 255 } else { 0 })
            .collect();
        let rotated = rotate_image(&edge, 10.0);
        assert!(
            rotated.iter().any(|&p| p > 0 && p < 255),
            "bilinear interpolation gives grey pixels"
        );
    }
}
