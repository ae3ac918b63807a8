//! MNIST in CSV form: one image per line, the label first, then 784 pixel values 0–255.
//!
//! This is the layout of the widely shared `mnist_train.csv` files. A first line whose first
//! field is not an integer is taken as a header and skipped. Blank lines are skipped, fields
//! may carry surrounding spaces, and line endings may be `\n` or `\r\n`. The file may be
//! gzip-compressed; as for IDX, the content decides, not the name. No quoting is supported,
//! because no field of this format needs it.

use std::path::Path;

use super::idx::Content;
use super::{CLASS_COUNT, DataError, Dataset};
use crate::model::{IMAGE_PIXELS, IMAGE_SIDE};

/// Fields per row: the label and the pixels.
const FIELDS_PER_ROW: usize = 1 + IMAGE_PIXELS;

/// Loads a CSV file of labelled 28×28 images.
///
/// The dataset is named after the file, without its extension.
///
/// # Errors
/// [`DataError::Empty`], [`DataError::CsvNotText`], [`DataError::NoItems`] for a file with no
/// data rows, and with the one-based line number: [`DataError::CsvFieldCount`],
/// [`DataError::CsvNotInteger`], [`DataError::CsvPixelOutOfRange`],
/// [`DataError::CsvLabelOutOfRange`].
pub fn load_csv(path: &Path) -> Result<Dataset, DataError> {
    let (dataset, _) = read_csv(path)?;
    Ok(dataset)
}

/// Loads a CSV file and also returns whether it had a header row.
pub(crate) fn read_csv(path: &Path) -> Result<(Dataset, bool), DataError> {
    let text = read_text(path)?;
    let mut parser = RowParser::new(path);
    let mut has_header = false;
    let mut seen_first_row = false;

    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if !seen_first_row {
            seen_first_row = true;
            has_header = is_header(line);
            if has_header {
                continue;
            }
        }
        parser.parse_row(index + 1, line)?;
    }

    if parser.labels.is_empty() {
        return Err(DataError::NoItems {
            path: path.to_owned(),
        });
    }
    let dataset = Dataset {
        name: file_stem(path),
        images: parser.images,
        labels: parser.labels,
        rows: IMAGE_SIDE,
        cols: IMAGE_SIDE,
    };
    Ok((dataset, has_header))
}

fn read_text(path: &Path) -> Result<String, DataError> {
    let mut content = Content::open(path)?;
    let bytes = content.read_to_end(u64::MAX)?;
    if bytes.is_empty() {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    String::from_utf8(bytes).map_err(|source| DataError::CsvNotText {
        path: path.to_owned(),
        source,
    })
}

/// A header row is recognised by a first field that is not an integer, such as `label`.
fn is_header(line: &str) -> bool {
    let first = line.split(',').next().unwrap_or_default();
    first
        .trim()
        .trim_start_matches('\u{FEFF}')
        .parse::<i64>()
        .is_err()
}

/// Accumulates checked rows.
struct RowParser<'a> {
    path: &'a Path,
    images: Vec<u8>,
    labels: Vec<u8>,
}

impl<'a> RowParser<'a> {
    fn new(path: &'a Path) -> Self {
        Self {
            path,
            images: Vec::new(),
            labels: Vec::new(),
        }
    }

    fn parse_row(&mut self, line_number: usize, line: &str) -> Result<(), DataError> {
        let found = line.split(',').count();
        if found != FIELDS_PER_ROW {
            return Err(DataError::CsvFieldCount {
                path: self.path.to_owned(),
                line: line_number,
                expected: FIELDS_PER_ROW,
                found,
            });
        }

        let start = self.images.len();
        for (index, field) in line.split(',').enumerate() {
            let value = self.parse_integer(line_number, index + 1, field)?;
            if index == 0 {
                let label = self.check_label(line_number, value)?;
                self.labels.push(label);
            } else {
                let pixel = self.check_pixel(line_number, index + 1, value)?;
                self.images.push(pixel);
            }
        }
        debug_assert_eq!(self.images.len() - start, IMAGE_PIXELS);
        Ok(())
    }

    fn parse_integer(&self, line: usize, field: usize, text: &str) -> Result<i64, DataError> {
        let trimmed = text.trim().trim_start_matches('\u{FEFF}');
        trimmed.parse().map_err(|_| DataError::CsvNotInteger {
            path: self.path.to_owned(),
            line,
            field,
            value: trimmed.to_owned(),
        })
    }

    fn check_label(&self, line: usize, value: i64) -> Result<u8, DataError> {
        let max = (CLASS_COUNT - 1) as u8;
        match u8::try_from(value) {
            Ok(label) if label <= max => Ok(label),
            _ => Err(DataError::CsvLabelOutOfRange {
                path: self.path.to_owned(),
                line,
                value,
                max,
            }),
        }
    }

    fn check_pixel(&self, line: usize, field: usize, value: i64) -> Result<u8, DataError> {
        u8::try_from(value).map_err(|_| DataError::CsvPixelOutOfRange {
            path: self.path.to_owned(),
            line,
            field,
            value,
        })
    }
}

fn file_stem(path: &Path) -> String {
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem.strip_suffix(".gz").unwrap_or(&stem);
    stem.strip_suffix(".csv").unwrap_or(stem).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_files::{TempDir, csv_row, gzip};

    fn csv_error(text: impl AsRef<[u8]>) -> DataError {
        let dir = TempDir::new("csv-bad");
        let path = dir.write("bad.csv", text.as_ref());
        match load_csv(&path) {
            Ok(dataset) => panic!("CSV was accepted with {} rows", dataset.len()),
            Err(error) => {
                let message = error.to_string();
                assert!(
                    message.contains("bad.csv"),
                    "message {message} does not name the file"
                );
                error
            }
        }
    }

    fn header() -> String {
        let mut fields = vec!["label".to_owned()];
        fields.extend((0..IMAGE_PIXELS).map(|i| format!("pixel{i}")));
        fields.join(",")
    }

    #[test]
    fn csv_without_header_loads() {
        let dir = TempDir::new("csv-plain");
        let text = format!("{}\n{}\n", csv_row("7", "0"), csv_row("2", "255"));
        let path = dir.write("mnist_test.csv", text.as_bytes());

        let (dataset, has_header) = read_csv(&path).expect("load CSV");
        assert!(!has_header, "no header row");
        assert_eq!(dataset.labels, vec![7, 2], "labels");
        assert_eq!(dataset.images.len(), 2 * IMAGE_PIXELS, "pixel count");
        assert!(
            dataset.image(1).iter().all(|&p| p == 255),
            "second image is white"
        );
        assert_eq!(dataset.name, "mnist_test", "name from the file");
    }

    #[test]
    fn csv_with_header_skips_it() {
        let dir = TempDir::new("csv-header");
        let text = format!("{}\r\n{}\r\n\r\n", header(), csv_row(" 3 ", " 12 "));
        let path = dir.write("train.csv", text.as_bytes());

        let (dataset, has_header) = read_csv(&path).expect("load CSV with header");
        assert!(has_header, "header row detected");
        assert_eq!(dataset.labels, vec![3], "labels");
        assert!(
            dataset.images.iter().all(|&p| p == 12),
            "pixels with spaces and CRLF"
        );
    }

    #[test]
    fn gzip_csv_loads() {
        let dir = TempDir::new("csv-gzip");
        let text = format!("{}\n", csv_row("4", "1"));
        let path = dir.write("train.csv.gz", &gzip(text.as_bytes()));

        let dataset = load_csv(&path).expect("load gzip CSV");
        assert_eq!(dataset.labels, vec![4], "labels");
        assert_eq!(dataset.name, "train", "name without .csv.gz");
    }

    #[test]
    fn csv_wrong_field_count_gives_line() {
        let short = csv_row("1", "0")
            .rsplit_once(',')
            .map(|(head, _)| head.to_owned())
            .expect("row has commas");
        let error = csv_error(format!("{}\n{short}\n", csv_row("1", "0")));

        let DataError::CsvFieldCount {
            line,
            expected,
            found,
            ..
        } = error
        else {
            panic!("expected CsvFieldCount, got {error:?}");
        };
        assert_eq!(
            (line, expected, found),
            (2, 785, 784),
            "line, expected and found fields"
        );
    }

    #[test]
    fn csv_non_integer_gives_line_and_field() {
        let row = csv_row("1", "0").replacen(",0", ",0.5", 3);
        let error = csv_error(format!("{row}\n"));

        let DataError::CsvNotInteger {
            line, field, value, ..
        } = &error
        else {
            panic!("expected CsvNotInteger, got {error:?}");
        };
        assert_eq!(
            (*line, *field, value.as_str()),
            (1, 2, "0.5"),
            "line, field and value"
        );
    }

    #[test]
    fn csv_pixel_outside_byte_range_is_rejected() {
        for bad in ["256", "-1"] {
            let error = csv_error(format!("{}\n{}\n", csv_row("1", "0"), csv_row("1", bad)));

            let DataError::CsvPixelOutOfRange {
                line, field, value, ..
            } = error
            else {
                panic!("pixel {bad}: expected CsvPixelOutOfRange, got {error:?}");
            };
            assert_eq!((line, field), (2, 2), "pixel {bad}: line and field");
            assert_eq!(value.to_string(), bad, "pixel {bad}: value");
        }
    }

    #[test]
    fn csv_label_outside_classes_is_rejected() {
        for bad in ["10", "-1"] {
            let error = csv_error(format!("{}\n", csv_row(bad, "0")));

            let DataError::CsvLabelOutOfRange {
                line, value, max, ..
            } = error
            else {
                panic!("label {bad}: expected CsvLabelOutOfRange, got {error:?}");
            };
            assert_eq!((line, max), (1, 9), "label {bad}: line and largest class");
            assert_eq!(value.to_string(), bad, "label {bad}: value");
        }
    }

    #[test]
    fn csv_with_only_a_header_has_no_items() {
        let error = csv_error(format!("{}\n", header()));
        assert!(
            matches!(error, DataError::NoItems { .. }),
            "expected NoItems, got {error:?}"
        );
    }

    #[test]
    fn empty_csv_is_rejected() {
        let error = csv_error("");
        assert!(
            matches!(error, DataError::Empty { .. }),
            "expected Empty, got {error:?}"
        );
    }

    #[test]
    fn csv_in_latin1_is_not_text() {
        let error = csv_error(b"label\xE9\n");
        assert!(
            matches!(error, DataError::CsvNotText { .. }),
            "expected CsvNotText, got {error:?}"
        );
    }
}
