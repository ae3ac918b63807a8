//! IDX files, raw or gzip-compressed, recognised by content rather than by name.
//!
//! An IDX file is a 4-byte magic number (`00 00`, an element type code, the rank), one
//! big-endian `u32` per dimension, then the elements in row-major order. MNIST stores images as
//! rank 3 (`count × rows × cols`) and labels as rank 1, both as unsigned bytes.
//!
//! Reading happens in two steps, so a caller can reject a file from its header before
//! decompressing tens of megabytes: [`IdxReader::open`] parses the header, and
//! [`IdxReader::read_data`] reads the elements. The header is never trusted for an allocation.
//! For a raw file the declared data size is checked against the file length before anything is
//! read. For a gzip file at most the declared size plus one byte is decompressed, into a buffer
//! that grows with the bytes actually produced, and only then compared with the declaration.
//! Any of the six IDX element types is parsed and its size checked. The loaders in this
//! module accept only unsigned bytes, and [`super::inspect`] reports the others.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use super::DataError;

/// The two magic bytes that start every gzip stream (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1F, 0x8B];

/// Bytes of a file's start shown when it turns out not to be IDX.
const PREVIEW_BYTES: usize = 64;

/// Storage format of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Stored as is.
    None,
    /// A gzip stream (one or more members).
    Gzip,
}

/// Element type of an IDX file, from the third byte of its magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    /// Unsigned byte, code 0x08: the type of MNIST images and labels.
    U8,
    /// Signed byte, code 0x09.
    I8,
    /// Big-endian 16-bit signed integer, code 0x0B.
    I16,
    /// Big-endian 32-bit signed integer, code 0x0C.
    I32,
    /// Big-endian 32-bit float, code 0x0D.
    F32,
    /// Big-endian 64-bit float, code 0x0E.
    F64,
}

impl ElementType {
    /// Looks up the element type of a magic-number type code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0x08 => Some(Self::U8),
            0x09 => Some(Self::I8),
            0x0B => Some(Self::I16),
            0x0C => Some(Self::I32),
            0x0D => Some(Self::F32),
            0x0E => Some(Self::F64),
            _ => None,
        }
    }

    /// Type code as stored in the magic number.
    pub fn code(self) -> u8 {
        match self {
            Self::U8 => 0x08,
            Self::I8 => 0x09,
            Self::I16 => 0x0B,
            Self::I32 => 0x0C,
            Self::F32 => 0x0D,
            Self::F64 => 0x0E,
        }
    }

    /// Size of one element in bytes.
    pub fn size(self) -> u64 {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::I16 => 2,
            Self::I32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    /// Short Rust-style name, such as `u8` or `f32`.
    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "u8",
            Self::I8 => "i8",
            Self::I16 => "i16",
            Self::I32 => "i32",
            Self::F32 => "f32",
            Self::F64 => "f64",
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:02X})", self.name(), self.code())
    }
}

/// The parsed header of an IDX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxHeader {
    /// Type of every element.
    pub element_type: ElementType,
    /// Dimensions, item count first; never empty.
    pub dims: Vec<u32>,
}

impl IdxHeader {
    /// Number of items: the first dimension.
    pub fn items(&self) -> u32 {
        self.dims[0]
    }

    /// Header length in bytes.
    fn byte_len(&self) -> u64 {
        4 + 4 * self.dims.len() as u64
    }
}

/// A decompressed byte stream over a file, with its compression found from the first bytes.
pub(crate) struct Content {
    /// The file being read.
    pub path: PathBuf,
    /// The stream; decompressed when `compression` is gzip.
    pub reader: Box<dyn Read>,
    /// Storage format of the file.
    pub compression: Compression,
    /// File length on disk.
    pub file_len: u64,
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Content")
            .field("path", &self.path)
            .field("compression", &self.compression)
            .field("file_len", &self.file_len)
            .finish_non_exhaustive()
    }
}

impl Content {
    /// Opens `path` and detects gzip by its magic bytes; rejects an empty file.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let io_error = |source| DataError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        let file_len = file.metadata().map_err(io_error)?.len();
        if file_len == 0 {
            return Err(DataError::Empty {
                path: path.to_owned(),
            });
        }

        let mut buffered = BufReader::new(file);
        let is_gzip = buffered
            .fill_buf()
            .map_err(io_error)?
            .starts_with(&GZIP_MAGIC);
        let (reader, compression): (Box<dyn Read>, _) = if is_gzip {
            (Box::new(MultiGzDecoder::new(buffered)), Compression::Gzip)
        } else {
            (Box::new(buffered), Compression::None)
        };
        Ok(Self {
            path: path.to_owned(),
            reader,
            compression,
            file_len,
        })
    }

    /// Reads until `buf` is full or the stream ends; returns the bytes read.
    pub fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize, DataError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_error(e)),
            }
        }
        Ok(filled)
    }

    /// Reads everything that is left, growing the buffer only as bytes arrive.
    pub fn read_to_end(&mut self, limit: u64) -> Result<Vec<u8>, DataError> {
        let mut bytes = Vec::new();
        let result = (&mut self.reader).take(limit).read_to_end(&mut bytes);
        result.map_err(|e| self.read_error(e))?;
        Ok(bytes)
    }

    /// Counts the remaining bytes without keeping them.
    fn count_rest(&mut self) -> Result<u64, DataError> {
        let result = io::copy(&mut self.reader, &mut io::sink());
        result.map_err(|e| self.read_error(e))
    }

    /// Turns a read failure into the error that describes it: a damaged gzip stream, or I/O.
    fn read_error(&self, error: io::Error) -> DataError {
        let path = self.path.clone();
        match (self.compression, error.kind()) {
            (Compression::Gzip, io::ErrorKind::UnexpectedEof) => DataError::TruncatedGzip {
                path,
                message: error.to_string(),
            },
            (Compression::Gzip, io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData) => {
                DataError::CorruptGzip {
                    path,
                    message: error.to_string(),
                }
            }
            _ => DataError::Io {
                path,
                source: error,
            },
        }
    }
}

/// An IDX file whose header has been read and whose data has not.
#[derive(Debug)]
pub struct IdxReader {
    content: Content,
    header: IdxHeader,
}

impl IdxReader {
    /// Opens an IDX file, raw or gzip, and parses its header.
    ///
    /// # Errors
    /// [`DataError::Empty`], [`DataError::LooksLikeText`], [`DataError::UnknownMagic`],
    /// [`DataError::ZeroRank`], [`DataError::TruncatedHeader`], a gzip error, or I/O.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let mut content = Content::open(path)?;
        let header = read_header(&mut content)?;
        Ok(Self { content, header })
    }

    /// Returns the parsed header.
    pub fn header(&self) -> &IdxHeader {
        &self.header
    }

    /// Returns the storage format of the file.
    pub fn compression(&self) -> Compression {
        self.content.compression
    }

    /// Returns the path of the file being read.
    pub fn path(&self) -> &Path {
        &self.content.path
    }

    /// Reads the elements as raw big-endian bytes, exactly as many as the header declares.
    ///
    /// # Errors
    /// [`DataError::SizeOverflow`], [`DataError::BodyTooShort`], [`DataError::TrailingBytes`],
    /// a gzip error, or I/O.
    pub fn read_data(self) -> Result<Vec<u8>, DataError> {
        let expected = declared_data_len(&self.content.path, &self.header)?;
        match self.content.compression {
            Compression::None => self.read_raw_data(expected),
            Compression::Gzip => self.read_gzip_data(expected),
        }
    }

    /// Checks the declared size against the file length, then reads exactly that much.
    fn read_raw_data(mut self, expected: u64) -> Result<Vec<u8>, DataError> {
        let available = self.content.file_len.saturating_sub(self.header.byte_len());
        self.check_data_len(expected, available)?;

        // Safe to allocate now: `expected` is no larger than the file.
        let mut data = vec![0; to_usize(&self.content.path, &self.header, expected)?];
        let found = self.content.read_up_to(&mut data)?;
        self.check_data_len(expected, found as u64)?;
        Ok(data)
    }

    /// Decompresses at most one byte more than declared, so a bogus header cannot make the
    /// reader allocate more than the stream really holds.
    fn read_gzip_data(mut self, expected: u64) -> Result<Vec<u8>, DataError> {
        to_usize(&self.content.path, &self.header, expected)?;
        let data = self.content.read_to_end(expected.saturating_add(1))?;
        let found = data.len() as u64;
        if found > expected {
            let count = 1 + self.content.count_rest()?;
            return Err(DataError::TrailingBytes {
                path: self.content.path,
                count,
            });
        }
        self.check_data_len(expected, found)?;
        Ok(data)
    }

    fn check_data_len(&self, expected: u64, found: u64) -> Result<(), DataError> {
        let path = self.content.path.clone();
        if found < expected {
            let items = self.header.items();
            return Err(DataError::BodyTooShort {
                path,
                items,
                expected,
                found,
            });
        }
        if found > expected {
            return Err(DataError::TrailingBytes {
                path,
                count: found - expected,
            });
        }
        Ok(())
    }
}

/// Reads the magic number and the dimensions.
fn read_header(content: &mut Content) -> Result<IdxHeader, DataError> {
    let mut magic = [0u8; 4];
    let found = content.read_up_to(&mut magic)?;
    let magic = &magic[..found];
    if found == 0 {
        return Err(DataError::Empty {
            path: content.path.clone(),
        });
    }
    if magic.iter().take(2).any(|&b| b != 0) {
        return Err(not_idx_error(content, magic));
    }
    if found < 4 {
        return Err(DataError::TruncatedHeader {
            path: content.path.clone(),
            expected: 4,
            found,
        });
    }

    let Some(element_type) = ElementType::from_code(magic[2]) else {
        return Err(DataError::UnknownMagic {
            path: content.path.clone(),
            magic: magic.to_vec(),
        });
    };
    let rank = usize::from(magic[3]);
    if rank == 0 {
        return Err(DataError::ZeroRank {
            path: content.path.clone(),
        });
    }

    let mut dim_bytes = vec![0u8; 4 * rank];
    let found = content.read_up_to(&mut dim_bytes)?;
    if found < dim_bytes.len() {
        let path = content.path.clone();
        return Err(DataError::TruncatedHeader {
            path,
            expected: 4 + 4 * rank,
            found: 4 + found,
        });
    }
    let dims = dim_bytes
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(IdxHeader { element_type, dims })
}

/// Builds the error for a file whose first bytes are not an IDX magic number, reading a few
/// more bytes to tell text (CSV, HTML, an error page saved by a browser) from other binaries.
fn not_idx_error(content: &mut Content, magic: &[u8]) -> DataError {
    let mut start = magic.to_vec();
    let mut more = [0u8; PREVIEW_BYTES];
    // A failure here only shortens the preview, so the read error itself is not reported.
    let extra = content
        .read_up_to(&mut more[..PREVIEW_BYTES - magic.len()])
        .unwrap_or(0);
    start.extend_from_slice(&more[..extra]);

    let path = content.path.clone();
    if looks_like_text(&start) {
        let preview = String::from_utf8_lossy(&start).into_owned();
        DataError::LooksLikeText { path, preview }
    } else {
        DataError::UnknownMagic {
            path,
            magic: magic.to_vec(),
        }
    }
}

/// Returns whether `bytes` read as UTF-8 text without control characters other than whitespace.
/// A character cut off at the end of the sample does not count against it.
pub(crate) fn looks_like_text(bytes: &[u8]) -> bool {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => {
            // The sample ends inside a multi-byte character; judge the complete part.
            std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !text.is_empty() && text.chars().all(|c| !c.is_control() || c.is_whitespace())
}

/// Data length in bytes implied by the header, with every multiplication checked.
fn declared_data_len(path: &Path, header: &IdxHeader) -> Result<u64, DataError> {
    let overflow = || DataError::SizeOverflow {
        path: path.to_owned(),
        dims: header.dims.clone(),
        element: header.element_type.name(),
    };
    header
        .dims
        .iter()
        .try_fold(header.element_type.size(), |len, &dim| {
            len.checked_mul(u64::from(dim))
        })
        .ok_or_else(overflow)
}

/// Converts a byte count to `usize`, which fails only where `usize` is narrower than 64 bits.
fn to_usize(path: &Path, header: &IdxHeader, len: u64) -> Result<usize, DataError> {
    usize::try_from(len).map_err(|_| DataError::SizeOverflow {
        path: path.to_owned(),
        dims: header.dims.clone(),
        element: header.element_type.name(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_files::{TempDir, gzip, idx_bytes, labels_idx};

    fn open_error(path: &Path) -> DataError {
        match IdxReader::open(path).and_then(IdxReader::read_data) {
            Ok(data) => panic!(
                "{} was accepted with {} data bytes",
                path.display(),
                data.len()
            ),
            Err(error) => error,
        }
    }

    fn assert_names_file(error: &DataError, path: &Path) {
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string()),
            "message {message:?} does not name {}",
            path.display()
        );
    }

    #[test]
    fn raw_labels_read_back() {
        let dir = TempDir::new("idx-raw");
        let path = dir.write("labels-idx1-ubyte", &labels_idx(&[3, 1, 4, 1, 5]));

        let reader = IdxReader::open(&path).expect("open raw IDX");
        assert_eq!(
            reader.compression(),
            Compression::None,
            "compression of a raw file"
        );
        assert_eq!(
            reader.header().element_type,
            ElementType::U8,
            "element type"
        );
        assert_eq!(reader.header().dims, vec![5], "dims");
        assert_eq!(
            reader.read_data().expect("read raw data"),
            vec![3, 1, 4, 1, 5],
            "labels"
        );
    }

    #[test]
    fn gzip_is_recognised_by_content_not_name() {
        let dir = TempDir::new("idx-gzip");
        let path = dir.write("labels-without-gz-suffix", &gzip(&labels_idx(&[9, 8, 7])));

        let reader = IdxReader::open(&path).expect("open gzip IDX");
        assert_eq!(
            reader.compression(),
            Compression::Gzip,
            "compression of a gzip file"
        );
        assert_eq!(
            reader.read_data().expect("read gzip data"),
            vec![9, 8, 7],
            "labels"
        );
    }

    #[test]
    fn concatenated_gzip_members_read_as_one_stream() {
        let dir = TempDir::new("idx-multi");
        let whole = labels_idx(&[1, 2, 3, 4]);
        let mut bytes = gzip(&whole[..6]);
        bytes.extend(gzip(&whole[6..]));
        let path = dir.write("labels.gz", &bytes);

        let data = IdxReader::open(&path)
            .and_then(IdxReader::read_data)
            .expect("read two members");
        assert_eq!(data, vec![1, 2, 3, 4], "labels split across gzip members");
    }

    #[test]
    fn other_element_types_are_read_with_their_size() {
        let dir = TempDir::new("idx-types");
        let floats: Vec<u8> = [1.5f32, -2.0, 0.25]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let path = dir.write("floats", &idx_bytes(0x0D, &[3], &floats));

        let reader = IdxReader::open(&path).expect("open f32 IDX");
        assert_eq!(
            reader.header().element_type,
            ElementType::F32,
            "element type"
        );
        assert_eq!(
            reader.read_data().expect("read f32 data"),
            floats,
            "f32 bytes"
        );
    }

    #[test]
    fn element_type_codes_round_trip() {
        for code in [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E] {
            let element = ElementType::from_code(code).expect("known code");
            assert_eq!(element.code(), code, "code of {element}");
        }
        assert_eq!(
            ElementType::from_code(0x0A),
            None,
            "0x0A is not an IDX element type"
        );
    }

    #[test]
    fn empty_file_names_file() {
        let dir = TempDir::new("idx-empty");
        let path = dir.write("empty-idx1-ubyte", b"");

        let error = open_error(&path);
        assert!(
            matches!(error, DataError::Empty { .. }),
            "expected Empty, got {error:?}"
        );
        assert_names_file(&error, &path);
    }

    #[test]
    fn gzip_of_nothing_is_empty() {
        let dir = TempDir::new("idx-empty-gz");
        let path = dir.write("empty.gz", &gzip(b""));

        let error = open_error(&path);
        assert!(
            matches!(error, DataError::Empty { .. }),
            "expected Empty, got {error:?}"
        );
    }

    #[test]
    fn truncated_gzip_names_file() {
        let dir = TempDir::new("idx-trunc-gz");
        let labels: Vec<u8> = (0..5000).map(|i| (i * 7 % 10) as u8).collect();
        let compressed = gzip(&labels_idx(&labels));
        let path = dir.write(
            "train-labels-idx1-ubyte.gz",
            &compressed[..compressed.len() / 2],
        );

        let error = open_error(&path);
        assert!(
            matches!(error, DataError::TruncatedGzip { .. }),
            "expected TruncatedGzip, got {error:?}"
        );
        assert_names_file(&error, &path);
        assert!(
            error.to_string().contains("truncated"),
            "message {error} does not say truncated"
        );
    }

    #[test]
    fn gzip_missing_its_checksum_is_truncated() {
        let dir = TempDir::new("idx-trunc-trailer");
        let compressed = gzip(&labels_idx(&[1, 2, 3]));
        let path = dir.write("labels.gz", &compressed[..compressed.len() - 4]);

        let error = open_error(&path);
        assert!(
            matches!(error, DataError::TruncatedGzip { .. }),
            "expected TruncatedGzip, got {error:?}"
        );
    }

    #[test]
    fn gzip_with_bad_checksum_is_corrupt() {
        let dir = TempDir::new("idx-crc");
        let mut compressed = gzip(&labels_idx(&[1, 2, 3]));
        let crc_start = compressed.len() - 8;
        compressed[crc_start] ^= 0xFF;
        let path = dir.write("labels.gz", &compressed);

        let error = open_error(&path);
        assert!(
            matches!(error, DataError::CorruptGzip { .. }),
            "expected CorruptGzip, got {error:?}"
        );
        assert_names_file(&error, &path);
    }

    #[test]
    fn short_body_reports_declared_and_found_sizes() {
        let dir = TempDir::new("idx-short");
        let bytes = idx_bytes(0x08, &[10, 28, 28], &vec![0; 5 * 784]);
        for (name, content) in [("raw", bytes.clone()), ("gz", gzip(&bytes))] {
            let path = dir.write(name, &content);

            let error = open_error(&path);
            let DataError::BodyTooShort {
                items,
                expected,
                found,
                ..
            } = error
            else {
                panic!("{name}: expected BodyTooShort, got {error:?}");
            };
            assert_eq!(items, 10, "{name}: declared items");
            assert_eq!(expected, 7840, "{name}: declared bytes");
            assert_eq!(found, 3920, "{name}: bytes present");
        }
    }

    #[test]
    fn short_body_message_names_file() {
        let dir = TempDir::new("idx-short-msg");
        let path = dir.write("images", &idx_bytes(0x08, &[2, 28, 28], &[0; 100]));

        let error = open_error(&path);
        assert_names_file(&error, &path);
        assert!(
            error.to_string().contains("declares 2 items"),
            "message {error} gives the item count"
        );
    }

    #[test]
    fn billions_of_items_rejected_without_allocating() {
        let dir = TempDir::new("idx-billions");
        let bytes = idx_bytes(0x08, &[4_000_000_000, 28, 28], &[0; 784]);
        for (name, content) in [("raw", bytes.clone()), ("gz", gzip(&bytes))] {
            let path = dir.write(name, &content);

            // A reader that trusted the header would try to allocate 3 TB here and abort.
            let error = open_error(&path);
            let DataError::BodyTooShort {
                expected, found, ..
            } = error
            else {
                panic!("{name}: expected BodyTooShort, got {error:?}");
            };
            assert_eq!(expected, 4_000_000_000 * 784, "{name}: declared bytes");
            assert_eq!(found, 784, "{name}: bytes present");
        }
    }

    #[test]
    fn overflowing_dims_are_rejected() {
        let dir = TempDir::new("idx-overflow");
        let path = dir.write("huge", &idx_bytes(0x0E, &[u32::MAX; 3], &[0; 16]));

        let error = open_error(&path);
        assert!(
            matches!(error, DataError::SizeOverflow { .. }),
            "expected SizeOverflow, got {error:?}"
        );
        assert_names_file(&error, &path);
    }

    #[test]
    fn trailing_bytes_are_counted() {
        let dir = TempDir::new("idx-trailing");
        let mut bytes = labels_idx(&[1, 2, 3]);
        bytes.extend_from_slice(&[0; 17]);
        for (name, content) in [("raw", bytes.clone()), ("gz", gzip(&bytes))] {
            let path = dir.write(name, &content);

            let error = open_error(&path);
            let DataError::TrailingBytes { count, .. } = error else {
                panic!("{name}: expected TrailingBytes, got {error:?}");
            };
            assert_eq!(count, 17, "{name}: trailing byte count");
            let message = open_error(&path).to_string();
            assert!(
                message.contains("17 trailing bytes after the declared data"),
                "{name}: message {message}"
            );
        }
    }

    #[test]
    fn unknown_magic_number_is_shown_in_hex() {
        let dir = TempDir::new("idx-magic");
        let path = dir.write("random", &[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);

        let error = open_error(&path);
        assert!(
            matches!(error, DataError::UnknownMagic { .. }),
            "expected UnknownMagic, got {error:?}"
        );
        assert!(
            error.to_string().contains("89 50 4E 47"),
            "message {error} shows the magic bytes"
        );
        assert_names_file(&error, &path);
    }

    #[test]
    fn unknown_element_type_code_is_unknown_magic() {
        let dir = TempDir::new("idx-type");
        let path = dir.write("odd-type", &idx_bytes(0x07, &[1], &[0]));

        let error = open_error(&path);
        assert!(
            matches!(error, DataError::UnknownMagic { .. }),
            "expected UnknownMagic, got {error:?}"
        );
        assert!(
            error.to_string().contains("00 00 07 01"),
            "message {error} shows the magic bytes"
        );
    }

    #[test]
    fn html_saved_as_idx_looks_like_text() {
        let dir = TempDir::new("idx-html");
        let page = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n";
        for (name, content) in [
            ("train-images-idx3-ubyte", page.to_vec()),
            ("train-images-idx3-ubyte.gz", gzip(page)),
        ] {
            let path = dir.write(name, &content);

            let error = open_error(&path);
            assert!(
                matches!(error, DataError::LooksLikeText { .. }),
                "{name}: expected LooksLikeText, got {error:?}"
            );
            let message = error.to_string();
            assert!(
                message.contains("looks like text/HTML, not an IDX file"),
                "{name}: message {message}"
            );
            assert!(
                message.contains("<!DOCTYPE html>"),
                "{name}: message {message} shows the start"
            );
            assert_names_file(&error, &path);
        }
    }

    #[test]
    fn csv_saved_as_idx_looks_like_text() {
        let dir = TempDir::new("idx-csv");
        let path = dir.write("t10k-labels-idx1-ubyte", b"7,0,0,0\n2,0,0,0\n");

        let error = open_error(&path);
        assert!(
            matches!(error, DataError::LooksLikeText { .. }),
            "expected LooksLikeText, got {error:?}"
        );
    }

    #[test]
    fn truncated_header_reports_lengths() {
        let dir = TempDir::new("idx-header");
        let cases: [(&str, Vec<u8>, usize, usize); 2] = [
            ("magic", vec![0, 0, 8], 4, 3),
            ("dims", vec![0, 0, 8, 3, 0, 0, 0, 5, 0, 0], 16, 10),
        ];
        for (name, bytes, want_expected, want_found) in cases {
            let path = dir.write(name, &bytes);

            let error = open_error(&path);
            let DataError::TruncatedHeader {
                expected, found, ..
            } = error
            else {
                panic!("{name}: expected TruncatedHeader, got {error:?}");
            };
            assert_eq!(expected, want_expected, "{name}: header length");
            assert_eq!(found, want_found, "{name}: bytes present");
        }
    }

    #[test]
    fn rank_zero_is_rejected() {
        let dir = TempDir::new("idx-rank0");
        let path = dir.write("scalar", &[0, 0, 8, 0, 42]);

        let error = open_error(&path);
        assert!(
            matches!(error, DataError::ZeroRank { .. }),
            "expected ZeroRank, got {error:?}"
        );
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let dir = TempDir::new("idx-missing");
        let path = dir.path().join("not-there");

        let error = open_error(&path);
        assert!(
            matches!(error, DataError::Io { .. }),
            "expected Io, got {error:?}"
        );
        assert_names_file(&error, &path);
    }

    #[test]
    fn text_detection_accepts_utf8_and_rejects_binary() {
        assert!(looks_like_text(b"label,pixel0,pixel1"), "CSV header");
        assert!(looks_like_text("étiquette,pixel".as_bytes()), "UTF-8 text");
        assert!(
            looks_like_text(&"ab€".as_bytes()[..4]),
            "text cut inside a character"
        );
        assert!(!looks_like_text(&[0x89, 0x50, 0x4E, 0x47]), "PNG signature");
        assert!(!looks_like_text(b"ab\x01cd"), "control character");
    }
}
