//! The one error type of the data module.
//!
//! Every variant names the file it is about, and the message states the problem, the field and
//! the value found, so a user can fix the file from the message alone.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Error from finding, reading or checking a dataset file or folder.
#[derive(Debug, Error)]
pub enum DataError {
    /// The operating system could not open or read the file.
    #[error("failed to read {}: {source}", path.display())]
    Io {
        /// File or folder that failed.
        path: PathBuf,
        /// Error reported by the operating system.
        source: io::Error,
    },

    /// None of the accepted names for a dataset file exists in the folder.
    #[error("missing {} in {}", names.join(" or "), dir.display())]
    MissingFile {
        /// Folder that was searched.
        dir: PathBuf,
        /// File names tried, preferred name first.
        names: Vec<String>,
    },

    /// No data directory in the search order contains the dataset.
    #[error(
        "dataset {dataset} not found: looked for {dataset}/ in {}; pass --data-dir DIR or \
        set EWC_WORKBENCH_DATA to a folder that contains {dataset}/",
        list_paths(searched)
    )]
    MissingDataset {
        /// Dataset folder name, such as `mnist`.
        dataset: String,
        /// Data directories that were searched, in order.
        searched: Vec<PathBuf>,
    },

    /// The file has no bytes at all.
    #[error("file is empty ({})", path.display())]
    Empty {
        /// The empty file.
        path: PathBuf,
    },

    /// The gzip stream ends before its end marker and checksum.
    #[error("gzip stream is truncated, so the file is probably an incomplete download: \
        {message} ({})", path.display())]
    TruncatedGzip {
        /// The gzip file.
        path: PathBuf,
        /// Decompressor's description of where it stopped.
        message: String,
    },

    /// The gzip stream is damaged (bad header, bad deflate data or checksum mismatch).
    #[error("gzip stream is corrupt: {message} ({})", path.display())]
    CorruptGzip {
        /// The gzip file.
        path: PathBuf,
        /// Decompressor's description of the damage.
        message: String,
    },

    /// The file ends inside the IDX header.
    #[error("file ends inside the IDX header: {found} of {expected} header bytes present ({})",
        path.display())]
    TruncatedHeader {
        /// The IDX file.
        path: PathBuf,
        /// Header length implied by the magic number.
        expected: usize,
        /// Bytes present.
        found: usize,
    },

    /// The first bytes are not an IDX magic number.
    #[error("unknown magic number {}: an IDX file starts with 00 00, an element type code \
        and the rank ({})", hex_bytes(magic), path.display())]
    UnknownMagic {
        /// The file.
        path: PathBuf,
        /// The first four bytes (after decompression).
        magic: Vec<u8>,
    },

    /// The file starts with printable text, so it is most likely CSV, HTML or an error page.
    #[error("looks like text/HTML, not an IDX file: it starts with {preview:?} ({})",
        path.display())]
    LooksLikeText {
        /// The file.
        path: PathBuf,
        /// The first bytes, lossily decoded for display.
        preview: String,
    },

    /// The IDX header declares rank 0, which describes no items.
    #[error("IDX header declares rank 0, so the file describes no items ({})", path.display())]
    ZeroRank {
        /// The IDX file.
        path: PathBuf,
    },

    /// The byte count implied by the dimensions does not fit in a 64-bit integer or in memory.
    #[error("IDX dimensions {} of {element} elements overflow the byte count ({})",
        join_dims(dims), path.display())]
    SizeOverflow {
        /// The IDX file.
        path: PathBuf,
        /// Dimensions from the header.
        dims: Vec<u32>,
        /// Element type name.
        element: &'static str,
    },

    /// The data after the header is shorter than the header declares.
    #[error("header declares {items} items ({expected} bytes of data) but the file holds only \
        {found} bytes after the header, so the file is truncated ({})", path.display())]
    BodyTooShort {
        /// The IDX file.
        path: PathBuf,
        /// Item count from the header (first dimension).
        items: u32,
        /// Data bytes the header implies.
        expected: u64,
        /// Data bytes present.
        found: u64,
    },

    /// Bytes follow the data that the header declares.
    #[error("{count} trailing bytes after the declared data ({})", path.display())]
    TrailingBytes {
        /// The IDX file.
        path: PathBuf,
        /// Number of extra bytes.
        count: u64,
    },

    /// The element type is valid IDX but not unsigned bytes, which is all the loaders read.
    #[error("IDX element type 0x{code:02X} ({name}) is not supported: images and labels must be \
        unsigned bytes (0x08) ({})", path.display())]
    UnsupportedElementType {
        /// The IDX file.
        path: PathBuf,
        /// Type code from the magic number.
        code: u8,
        /// Type name, such as `f32`.
        name: &'static str,
    },

    /// A labels file was expected and an images file was found, or the reverse.
    #[error("expected {expected} but found IDX data of shape {} ({})", join_dims(dims),
        path.display())]
    WrongKind {
        /// The IDX file.
        path: PathBuf,
        /// Description of the expected file, such as "a labels file (IDX rank 1: count)".
        expected: &'static str,
        /// Dimensions found.
        dims: Vec<u32>,
    },

    /// The images are not of the size the network takes.
    #[error("images are {rows}×{cols} but {expected}×{expected} is needed ({})", path.display())]
    WrongImageSize {
        /// The images file.
        path: PathBuf,
        /// Rows per image found.
        rows: u32,
        /// Columns per image found.
        cols: u32,
        /// Side length needed.
        expected: usize,
    },

    /// The file declares zero items.
    #[error("file holds no items ({})", path.display())]
    NoItems {
        /// The file.
        path: PathBuf,
    },

    /// The images file and the labels file hold different numbers of items.
    #[error("labels file has {labels} entries but images file has {images} ({})",
        labels_path.display())]
    CountMismatch {
        /// The labels file.
        labels_path: PathBuf,
        /// The images file.
        images_path: PathBuf,
        /// Item count in the labels file.
        labels: usize,
        /// Item count in the images file.
        images: usize,
    },

    /// A label is not one of the classes the dataset may use.
    #[error("label {label} of item {item} is outside the classes 0–{max} ({})", path.display())]
    LabelOutOfRange {
        /// The labels file.
        path: PathBuf,
        /// Zero-based item index.
        item: usize,
        /// Label found.
        label: u8,
        /// Largest label allowed.
        max: u8,
    },

    /// A CSV file is not valid UTF-8 text.
    #[error("CSV file is not UTF-8 text: {source} ({})", path.display())]
    CsvNotText {
        /// The CSV file.
        path: PathBuf,
        /// Decoding error.
        source: std::string::FromUtf8Error,
    },

    /// A CSV row has the wrong number of fields.
    #[error("line {line}: expected {expected} fields (label then {pixels} pixels) but found \
        {found} ({})", path.display(), pixels = expected - 1)]
    CsvFieldCount {
        /// The CSV file.
        path: PathBuf,
        /// One-based line number.
        line: usize,
        /// Fields expected.
        expected: usize,
        /// Fields found.
        found: usize,
    },

    /// A CSV field is not an integer.
    #[error("line {line}, field {field}: {value:?} is not an integer ({})", path.display())]
    CsvNotInteger {
        /// The CSV file.
        path: PathBuf,
        /// One-based line number.
        line: usize,
        /// One-based field number (1 is the label).
        field: usize,
        /// Text of the field.
        value: String,
    },

    /// A CSV pixel value is outside 0–255.
    #[error("line {line}, field {field}: pixel value {value} is outside 0–255 ({})",
        path.display())]
    CsvPixelOutOfRange {
        /// The CSV file.
        path: PathBuf,
        /// One-based line number.
        line: usize,
        /// One-based field number.
        field: usize,
        /// Value found.
        value: i64,
    },

    /// A CSV label is outside the classes.
    #[error("line {line}: label {value} is outside the classes 0–{max} ({})", path.display())]
    CsvLabelOutOfRange {
        /// The CSV file.
        path: PathBuf,
        /// One-based line number.
        line: usize,
        /// Value found.
        value: i64,
        /// Largest label allowed.
        max: u8,
    },
}

fn hex_bytes(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(" ")
}

fn join_dims(dims: &[u32]) -> String {
    let parts: Vec<String> = dims.iter().map(ToString::to_string).collect();
    parts.join("×")
}

fn list_paths(paths: &[PathBuf]) -> String {
    let parts: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    parts.join(", ")
}
