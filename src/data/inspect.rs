//! Reports on dataset files, for the `inspect` subcommand.
//!
//! [`inspect`] reads the whole file with the same checks as the loaders, so a file it accepts
//! has a valid header and exactly the data the header declares. It goes further than the
//! loaders in one way: IDX files of any element type are read and reported, while the loaders
//! accept only unsigned bytes. Images that are not 28×28 and labels outside 0–9 are reported
//! with a note that training rejects them, rather than as errors, because it reports what is
//! there rather than what a task needs.

use std::fmt;
use std::path::{Path, PathBuf};

use super::csv::read_csv;
use super::idx::{Compression, Content, ElementType, IdxReader};
use super::{CLASS_COUNT, DataError};

/// Encoding of a dataset file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// An IDX file.
    Idx {
        /// Storage format of the file.
        compression: Compression,
    },
    /// Labelled images as comma-separated text.
    Csv {
        /// Storage format of the file.
        compression: Compression,
        /// Whether the first row is a header.
        has_header: bool,
    },
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, compression) = match self {
            Self::Idx { compression } => ("IDX", compression),
            Self::Csv {
                compression,
                has_header: true,
            } => ("CSV with a header row", compression),
            Self::Csv {
                compression,
                has_header: false,
            } => ("CSV without a header row", compression),
        };
        match compression {
            Compression::None => write!(f, "{name}, uncompressed"),
            Compression::Gzip => write!(f, "{name}, gzip-compressed"),
        }
    }
}

/// Summary of the contents of one dataset file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Its encoding.
    pub format: FileFormat,
    /// IDX element type; `None` for CSV, whose fields are decimal integers.
    pub element_type: Option<ElementType>,
    /// Number of items: images, labels, or CSV rows.
    pub items: usize,
    /// Dimensions of one item, such as `[28, 28]` for an image; empty for a label.
    pub item_dims: Vec<u32>,
    /// Number of items per label value, for labels files and CSV; values that do not occur
    /// are left out.
    pub class_counts: Option<Vec<(u8, usize)>>,
}

impl fmt::Display for FileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.path.display())?;
        writeln!(f, "  format:       {}", self.format)?;
        match self.element_type {
            Some(element_type) => writeln!(f, "  element type: {element_type}")?,
            None => writeln!(
                f,
                "  element type: decimal integers (label, then 0–255 pixels)"
            )?,
        }
        writeln!(f, "  items:        {}", self.items)?;
        writeln!(f, "  item shape:   {}", describe_item(&self.item_dims))?;
        if let Some(counts) = &self.class_counts {
            let parts: Vec<String> = counts
                .iter()
                .map(|(label, count)| format!("{label}: {count}"))
                .collect();
            writeln!(f, "  per class:    {}", parts.join(", "))?;
            let outside: Vec<String> = counts
                .iter()
                .filter(|(label, _)| usize::from(*label) >= CLASS_COUNT)
                .map(|(label, _)| label.to_string())
                .collect();
            if !outside.is_empty() {
                writeln!(
                    f,
                    "  note:         labels {} are outside 0–{}; training rejects this file",
                    outside.join(", "),
                    CLASS_COUNT - 1
                )?;
            }
        }
        if self
            .element_type
            .is_some_and(|element_type| element_type != ElementType::U8)
        {
            writeln!(
                f,
                "  note:         elements are not unsigned bytes; training rejects this file"
            )?;
        }
        if !self.item_dims.is_empty() && self.item_dims != [28, 28] {
            writeln!(
                f,
                "  note:         items are not 28×28 images; training rejects this file"
            )?;
        }
        Ok(())
    }
}

fn describe_item(dims: &[u32]) -> String {
    if dims.is_empty() {
        return "one value per item".to_owned();
    }
    let parts: Vec<String> = dims.iter().map(ToString::to_string).collect();
    parts.join("×")
}

/// Reads a dataset file, IDX (raw or gzip, any element type) or CSV, and reports what it
/// contains. A text file counts as CSV when its first bytes contain a comma.
///
/// # Errors
/// Every error of the IDX reader and of [`super::load_csv`]; a text file without a comma
/// gives [`DataError::LooksLikeText`].
pub fn inspect(path: &Path) -> Result<FileReport, DataError> {
    match IdxReader::open(path) {
        Ok(reader) => inspect_idx(reader),
        Err(DataError::LooksLikeText { preview, .. }) if preview.contains(',') => inspect_csv(path),
        Err(error) => Err(error),
    }
}

fn inspect_idx(reader: IdxReader) -> Result<FileReport, DataError> {
    let path = reader.path().to_owned();
    let compression = reader.compression();
    let header = reader.header().clone();
    let data = reader.read_data()?;

    let is_labels = header.dims.len() == 1 && header.element_type == ElementType::U8;
    Ok(FileReport {
        path,
        format: FileFormat::Idx { compression },
        element_type: Some(header.element_type),
        items: header.items() as usize,
        item_dims: header.dims[1..].to_vec(),
        class_counts: is_labels.then(|| count_values(&data)),
    })
}

fn inspect_csv(path: &Path) -> Result<FileReport, DataError> {
    let compression = Content::open(path)?.compression;
    let (dataset, has_header) = read_csv(path)?;
    Ok(FileReport {
        path: path.to_owned(),
        format: FileFormat::Csv {
            compression,
            has_header,
        },
        element_type: None,
        items: dataset.len(),
        item_dims: vec![dataset.rows as u32, dataset.cols as u32],
        class_counts: Some(count_values(&dataset.labels)),
    })
}

fn count_values(values: &[u8]) -> Vec<(u8, usize)> {
    let mut counts = [0usize; 256];
    for &value in values {
        counts[usize::from(value)] += 1;
    }
    (0..=255u8)
        .map(|value| (value, counts[usize::from(value)]))
        .filter(|&(_, count)| count > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_files::{TempDir, csv_row, gzip, idx_bytes, images_idx, labels_idx};

    #[test]
    fn labels_outside_the_classes_get_a_note() {
        let dir = TempDir::new("inspect-label-42");
        let path = dir.write("labels", &labels_idx(&[1, 42, 10, 3]));

        let text = inspect(&path).expect("inspect labels").to_string();

        assert!(
            text.contains("labels 10, 42 are outside 0–9; training rejects this file"),
            "report {text}"
        );
        let dir = TempDir::new("inspect-label-ok");
        let path = dir.write("labels", &labels_idx(&[1, 9]));
        let text = inspect(&path).expect("inspect labels").to_string();
        assert!(!text.contains("note:"), "no note for labels 0–9: {text}");
    }

    #[test]
    fn labels_report_counts_per_class() {
        let dir = TempDir::new("inspect-labels");
        let path = dir.write(
            "train-labels-idx1-ubyte.gz",
            &gzip(&labels_idx(&[1, 0, 1, 9, 1])),
        );

        let report = inspect(&path).expect("inspect labels");
        assert_eq!(
            report.format,
            FileFormat::Idx {
                compression: Compression::Gzip
            },
            "format"
        );
        assert_eq!(report.element_type, Some(ElementType::U8), "element type");
        assert_eq!(report.items, 5, "items");
        assert!(
            report.item_dims.is_empty(),
            "labels have no item dimensions"
        );
        assert_eq!(
            report.class_counts,
            Some(vec![(0, 1), (1, 3), (9, 1)]),
            "counts per class"
        );

        let text = report.to_string();
        assert!(text.contains("IDX, gzip-compressed"), "report {text}");
        assert!(text.contains("0: 1, 1: 3, 9: 1"), "report {text}");
    }

    #[test]
    fn images_report_shape() {
        let dir = TempDir::new("inspect-images");
        let path = dir.write("images", &images_idx(3));

        let report = inspect(&path).expect("inspect images");
        assert_eq!(
            report.format,
            FileFormat::Idx {
                compression: Compression::None
            },
            "format"
        );
        assert_eq!(report.items, 3, "items");
        assert_eq!(report.item_dims, vec![28, 28], "item dims");
        assert_eq!(report.class_counts, None, "images have no classes");
        assert!(report.to_string().contains("28×28"), "report {report}");
    }

    #[test]
    fn float_idx_is_reported_not_rejected() {
        let dir = TempDir::new("inspect-f64");
        let path = dir.write("weights", &idx_bytes(0x0E, &[2, 3], &[0; 48]));

        let report = inspect(&path).expect("inspect f64 file");
        assert_eq!(report.element_type, Some(ElementType::F64), "element type");
        assert_eq!(report.item_dims, vec![3], "item dims");
        assert!(report.to_string().contains("f64 (0x0E)"), "report {report}");
        assert!(
            report
                .to_string()
                .contains("elements are not unsigned bytes; training rejects this file"),
            "report {report}"
        );
    }

    #[test]
    fn csv_is_reported_with_header_flag() {
        let dir = TempDir::new("inspect-csv");
        let text = format!("label,rest\n{}\n{}\n", csv_row("3", "0"), csv_row("3", "9"));
        let path = dir.write("train.csv", text.as_bytes());

        let report = inspect(&path).expect("inspect CSV");
        assert_eq!(
            report.format,
            FileFormat::Csv {
                compression: Compression::None,
                has_header: true
            },
            "format"
        );
        assert_eq!(report.items, 2, "rows");
        assert_eq!(report.class_counts, Some(vec![(3, 2)]), "counts per class");
        assert!(
            report.to_string().contains("CSV with a header row"),
            "report {report}"
        );
    }

    #[test]
    fn html_is_an_error_not_csv() {
        let dir = TempDir::new("inspect-html");
        let path = dir.write(
            "t10k-images-idx3-ubyte.gz",
            b"<html><body>Moved</body></html>",
        );

        let error = inspect(&path).expect_err("HTML is not a dataset");
        assert!(
            matches!(error, DataError::LooksLikeText { .. }),
            "expected LooksLikeText, got {error:?}"
        );
    }

    #[test]
    fn broken_idx_error_is_passed_on() {
        let dir = TempDir::new("inspect-broken");
        let mut bytes = labels_idx(&[1, 2]);
        bytes.push(0);
        let path = dir.write("labels", &bytes);

        let error = inspect(&path).expect_err("trailing byte");
        assert!(
            matches!(error, DataError::TrailingBytes { count: 1, .. }),
            "expected 1 trailing byte, got {error:?}"
        );
    }
}
