//! Reading CSV files into a [`Table`]: records come from the `csv` crate (quoting, CRLF, a
//! UTF-8 BOM); the layouts, the numbers in the element type and the errors naming file, line
//! and column are ours.

use crate::error::{Error, Result};
use crate::Scalar;
use ndarray::{s, Array2, Axis, Ix2};
use std::io::Read;
use std::path::Path;

use super::Dataset;

/// What the first line(s) of a CSV file hold. See the [module docs](super).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Header {
    /// No header: every line is data.
    None,
    /// The first line holds column names.
    Names,
    /// scikit-learn's layout: a line of counts (`n_samples,n_features,...`), then optionally a
    /// line of names. The rows must number `n_samples`, and the columns `n_features + 1` (the
    /// target last). Non-empty fields after the two counts are class names
    /// (`150,4,setosa,versicolor,virginica`): the target is then a class index below their
    /// number, and the names are kept ([`Dataset::class_names`]).
    Counts,
    /// A line of names if any of its fields is not a number, else no header.
    #[default]
    Auto,
}

/// The default limit on the decompressed size of a gzipped file: 1 GiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

/// How to read a CSV file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CsvOptions {
    /// What the first line(s) hold.
    pub header: Header,
    /// The field separator (default `,`); an ASCII character.
    pub delimiter: char,
    /// The most bytes a gzipped file may decompress to
    /// ([`DEFAULT_MAX_DECOMPRESSED_BYTES`] by default); more is
    /// [`Error::DecompressedTooLarge`], a guard against decompression bombs.
    pub max_decompressed_bytes: u64,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            header: Header::Auto,
            delimiter: ',',
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
        }
    }
}

impl CsvOptions {
    /// Options for the given header layout and a `,` delimiter.
    pub fn new(header: Header) -> Self {
        CsvOptions {
            header,
            ..CsvOptions::default()
        }
    }

    /// Sets the field separator (an ASCII character).
    pub fn delimiter(mut self, delimiter: char) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Sets the most bytes a gzipped file may decompress to.
    pub fn max_decompressed_bytes(mut self, limit: u64) -> Self {
        self.max_decompressed_bytes = limit;
        self
    }
}

/// A CSV file read into memory: a matrix of numbers and the column names, if the file had
/// them (else `column0`, `column1`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct Table<T = f64> {
    /// The column names.
    pub names: Vec<String>,
    /// One row per data line, one column per field.
    pub data: Array2<T>,
    /// The class names of a counts header (`150,4,setosa,versicolor,virginica`), in class
    /// index order; empty if the file has none.
    pub class_names: Vec<String>,
}

impl<T: Scalar> Table<T> {
    /// Splits the table into features (all columns but the last) and a target (the last),
    /// keeping the column and class names.
    pub fn into_dataset(self) -> Result<Dataset<T>> {
        let class_names = self.class_names.clone();
        let d = self.into_dataset_with_targets(1)?;
        let (features, targets, feature_names, target_names) = d.into_parts_with_names();
        let targets = targets.index_axis_move(Axis(1), 0);
        let d = Dataset::new(features, targets)?.with_names(feature_names, target_names)?;
        Ok(d.with_class_names_unchecked(class_names))
    }

    /// Splits the table into features and `n_targets` target columns (the last ones).
    pub fn into_dataset_with_targets(self, n_targets: usize) -> Result<Dataset<T, Ix2>> {
        let cols = self.data.ncols();
        if n_targets == 0 || n_targets > cols {
            return Err(Error::InvalidArgument {
                function: "Table::into_dataset_with_targets",
                what: format!(
                    "cannot take {n_targets} target column(s) from a table of {cols} column(s)"
                ),
            });
        }
        let split = cols - n_targets;
        let features = self.data.slice(s![.., ..split]).to_owned();
        let targets = self.data.slice(s![.., split..]).to_owned();
        let mut feature_names = self.names;
        let target_names = feature_names.split_off(split.min(feature_names.len()));
        Dataset::new(features, targets)?.with_names(feature_names, target_names)
    }
}

/// Reads a CSV file into a [`Table`] (gzipped if its name ends in `.gz` or it starts with the
/// gzip magic bytes).
pub fn read_csv<T: Scalar>(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Table<T>> {
    let path = path.as_ref();
    let text = read_text(path, options.max_decompressed_bytes)?;
    parse_csv(&text, &path.display().to_string(), options)
}

/// Reads a whole file as UTF-8 text, decompressing gzip up to `limit` bytes.
fn read_text(path: &Path, limit: u64) -> Result<String> {
    let file = path.display().to_string();
    let io_err = |e: std::io::Error| Error::Io {
        file: file.clone(),
        kind: e.kind(),
        what: e.to_string(),
    };
    let raw = std::fs::read(path).map_err(io_err)?;
    let gz_name = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let bytes = if gz_name || raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        // One byte past the limit tells "exactly the limit" from "more".
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| Error::Gzip {
                file: file.clone(),
                what: e.to_string(),
            })?;
        if out.len() as u64 > limit {
            return Err(Error::DecompressedTooLarge { file, limit });
        }
        out
    } else {
        raw
    };
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = 1 + bytes.iter().take(at).filter(|&&b| b == b'\n').count();
        Error::Parse {
            file: file.clone(),
            line,
            column: None,
            what: format!("not valid UTF-8 text (byte {at})"),
        }
    })
}

/// Removes surrounding whitespace and one pair of surrounding double quotes the CSV reader
/// left (a quote after a space is not a quote to it).
fn unquote(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"')
        .and_then(|g| g.strip_suffix('"'))
        .unwrap_or(f)
        .trim()
}

/// A field as a finite `f64`, or why not.
fn number(field: &str) -> std::result::Result<f64, String> {
    let f = unquote(field);
    if f.is_empty() {
        return Err("empty field where a number was expected".to_string());
    }
    match f.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err(format!("`{f}` is not a finite number")),
        Err(_) => Err(format!("`{f}` is not a number")),
    }
}

/// A field as a finite number of the element type: `1e39` is finite in `f64` but not in
/// `f32`.
fn element<T: Scalar>(field: &str) -> std::result::Result<T, String> {
    let x = number(field)?;
    let t = T::from_f64(x);
    if t.is_finite() {
        Ok(t)
    } else {
        Err(format!(
            "`{}` is out of range for {} (largest magnitude about {:.1e}); read the file as f64",
            unquote(field),
            std::any::type_name::<T>(),
            Scalar::to_f64(T::max_value())
        ))
    }
}

/// The first two fields as whole numbers, as in a counts line (`506,13,...`).
fn counts_like(fields: &[String]) -> Option<(usize, usize)> {
    match fields {
        [a, b, ..] => Some((unquote(a).parse().ok()?, unquote(b).parse().ok()?)),
        _ => None,
    }
}

const COUNTS_ADVICE: &str = "looks like scikit-learn's counts line (samples, features: `506,13,...`), not column names; read the file with Header::Counts (Dataset::read_boston for the Boston file)";

/// Parses CSV `text` (the contents of a file called `file`, for messages) into a [`Table`].
///
/// A UTF-8 byte order mark is dropped; quoted fields may contain the delimiter, quotes
/// (doubled) and line breaks; lines may end in `\n` or `\r\n`; blank lines are skipped.
pub fn parse_csv<T: Scalar>(text: &str, file: &str, options: &CsvOptions) -> Result<Table<T>> {
    let parse_err = |line: usize, column: Option<usize>, what: String| Error::Parse {
        file: file.to_string(),
        line,
        column,
        what,
    };
    let delim = u8::try_from(options.delimiter)
        .ok()
        .filter(u8::is_ascii)
        .ok_or_else(|| Error::InvalidArgument {
            function: "parse_csv",
            what: format!(
                "the delimiter must be an ASCII character, found `{}`",
                options.delimiter
            ),
        })?;
    // A BOM is not part of the first field: left there, it would make the first row of
    // numbers look like names under Header::Auto.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delim)
        .from_reader(text.as_bytes());
    let mut records = reader
        .records()
        .filter_map(|r| match r {
            Ok(rec) => {
                let line = rec.position().map_or(0, |p| p.line()) as usize;
                // A blank line (or whitespace only) is not a row.
                if rec.len() == 1 && rec.get(0).is_some_and(|f| f.trim().is_empty()) {
                    return None;
                }
                Some(Ok((
                    line,
                    rec.iter().map(str::to_string).collect::<Vec<_>>(),
                )))
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line()) as usize;
                Some(Err(parse_err(line, None, e.to_string())))
            }
        })
        .peekable();
    let first_no = match records.peek() {
        None => return Err(parse_err(1, None, "the file is empty".to_string())),
        Some(Err(e)) => return Err(e.clone()),
        Some(Ok((no, _))) => *no,
    };
    let all_numbers = |fields: &[String]| fields.iter().all(|f| number(f).is_ok());
    let names_of = |fields: &[String]| fields.iter().map(|f| unquote(f).to_string()).collect();

    let mut names: Option<(usize, Vec<String>)> = None;
    let mut counts: Option<(usize, usize, usize)> = None;
    let mut class_names: Vec<String> = Vec::new();
    // A Names header that looks like counts: (line, samples, features), checked once the
    // rows are known.
    let mut counts_as_names: Option<(usize, usize, usize)> = None;
    match options.header {
        Header::None => {}
        Header::Names => {
            if let Some(Ok((no, first))) = records.next() {
                if let Some((n, k)) = counts_like(&first) {
                    if first.len() > 2 && first[2..].iter().all(|f| unquote(f).is_empty()) {
                        return Err(parse_err(no, None, format!("line {no} {COUNTS_ADVICE}")));
                    }
                    counts_as_names = Some((no, n, k));
                }
                names = Some((no, names_of(&first)));
            }
        }
        Header::Auto => {
            if let Some(Ok((_, first))) = records.peek() {
                if !all_numbers(first) {
                    if let Some(Ok((no, first))) = records.next() {
                        names = Some((no, names_of(&first)));
                    }
                }
            }
        }
        Header::Counts => {
            if let Some(Ok((no, first))) = records.next() {
                let count = |k: usize, what: &str| {
                    let f = first.get(k - 1).map_or("", |f| unquote(f));
                    f.parse::<usize>().map_err(|_| {
                        parse_err(
                            no,
                            Some(k),
                            format!(
                                "expected the number of {what} (a count line such as `506,13`), found `{f}`; for a file without a count line use Header::Names, Header::None or Header::Auto"
                            ),
                        )
                    })
                };
                let n_samples = count(1, "samples")?;
                let n_features = count(2, "features")?;
                counts = Some((no, n_samples, n_features));
                class_names = first
                    .iter()
                    .skip(2)
                    .map(|f| unquote(f).to_string())
                    .filter(|f| !f.is_empty())
                    .collect();
                if let Some(Ok((_, line))) = records.peek() {
                    if !all_numbers(line) {
                        if let Some(Ok((no, line))) = records.next() {
                            names = Some((no, names_of(&line)));
                        }
                    }
                }
            }
        }
    }

    let mut values: Vec<T> = Vec::new();
    let mut width: Option<(usize, usize)> = None; // (fields per row, line that set it)
    let mut rows = 0usize;
    let mut last_line = first_no;
    for record in records {
        let (no, fields) = record?;
        last_line = no;
        let start = values.len();
        for (k, field) in fields.iter().enumerate() {
            let x = element::<T>(field).map_err(|what| parse_err(no, Some(k + 1), what))?;
            values.push(x);
        }
        let found = values.len() - start;
        match width {
            None => width = Some((found, no)),
            Some((w, at)) if w != found => {
                return Err(parse_err(
                    no,
                    Some(w.min(found) + 1),
                    format!(
                        "ragged row: {found} field(s), but line {at} has {w}; every row needs the same number of fields"
                    ),
                ));
            }
            Some(_) => {}
        }
        if !class_names.is_empty() {
            let label = values.last().map_or(f64::NAN, |&v| Scalar::to_f64(v));
            let k = class_names.len();
            if !(label >= 0.0 && label.fract() == 0.0 && label < k as f64) {
                return Err(parse_err(
                    no,
                    Some(found),
                    format!(
                        "the class label {label} is not a class index: the count line names {k} classes, so labels must be 0..{} ({})",
                        k - 1,
                        class_names
                            .iter()
                            .enumerate()
                            .map(|(i, n)| format!("{i} = {n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        rows += 1;
    }
    let Some((cols, _)) = width else {
        return Err(parse_err(
            last_line,
            None,
            "no data rows after the header".to_string(),
        ));
    };

    if let Some((no, n, k)) = counts_as_names {
        if n == rows && k.checked_add(1) == Some(cols) {
            return Err(parse_err(no, None, format!("line {no} {COUNTS_ADVICE}")));
        }
    }
    if let Some((no, n)) = &names {
        if n.len() != cols {
            return Err(parse_err(
                *no,
                None,
                format!(
                    "the header names {} column(s), but the rows have {cols}",
                    n.len()
                ),
            ));
        }
    }
    if let Some((no, n_samples, n_features)) = counts {
        if n_samples != rows {
            return Err(parse_err(
                last_line,
                None,
                format!("line {no} announces {n_samples} row(s), but the file has {rows}"),
            ));
        }
        // A count near usize::MAX must not overflow into a match.
        if n_features.checked_add(1) != Some(cols) {
            return Err(parse_err(
                no,
                Some(2),
                format!(
                    "line {no} announces {n_features} feature(s), so {n_features} + 1 column(s) with the target, but the rows have {cols}"
                ),
            ));
        }
    }

    let data = Array2::from_shape_vec((rows, cols), values)
        .map_err(|e| parse_err(last_line, None, format!("internal shape error: {e}")))?;
    let names = match names {
        Some((_, n)) => n,
        None => (0..cols).map(|k| format!("column{k}")).collect(),
    };
    Ok(Table {
        names,
        data,
        class_names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use std::io::Write;

    fn parse(text: &str, header: Header) -> Result<Table<f64>> {
        parse_csv(text, "t.csv", &CsvOptions::new(header))
    }

    fn parse_error(text: &str, header: Header) -> (usize, Option<usize>, String) {
        match parse(text, header) {
            Err(Error::Parse {
                file,
                line,
                column,
                what,
            }) => {
                assert_eq!(file, "t.csv");
                (line, column, what)
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn plain_and_header_and_counts_layouts() {
        let t = parse("1,2,3\n4,5,6\n", Header::None).unwrap();
        assert_eq!(t.data, array![[1., 2., 3.], [4., 5., 6.]]);
        assert_eq!(t.names, ["column0", "column1", "column2"]);

        let t = parse("a, \"b\" ,c\r\n1,2,3\r\n\r\n4,5,6", Header::Auto).unwrap();
        assert_eq!(t.names, ["a", "b", "c"]);
        assert_eq!(t.data.nrows(), 2);
        let t = parse("1,2,3\n4,5,6\n", Header::Auto).unwrap();
        assert_eq!(t.data.nrows(), 2);

        let text = "2,2,,\n\"p\",\"q\",\"t\"\n1.5,-2e-1,3\n4,5,\"6\"\n";
        let t = parse(text, Header::Counts).unwrap();
        assert_eq!(t.names, ["p", "q", "t"]);
        assert_eq!(t.data, array![[1.5, -0.2, 3.], [4., 5., 6.]]);
        assert!(t.class_names.is_empty());
        let d = t.into_dataset().unwrap();
        assert_eq!(d.features(), array![[1.5, -0.2], [4., 5.]]);
        assert_eq!(d.targets(), array![3., 6.]);
        assert_eq!(d.feature_names(), ["p", "q"]);
        assert_eq!(d.target_names(), ["t"]);

        let semi = CsvOptions::new(Header::None).delimiter(';');
        let t: Table<f32> = parse_csv("1;2\n3;4", "s", &semi).unwrap();
        assert_eq!(t.data, array![[1f32, 2.], [3., 4.]]);
        let bad = CsvOptions::new(Header::None).delimiter('é');
        assert!(matches!(
            parse_csv::<f64>("1", "s", &bad),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn quoting_crlf_and_ragged_rows_through_the_csv_crate() {
        // A quoted name may hold the delimiter, a doubled quote and a line break.
        let t = parse(
            "\"a,1\",\"say \"\"hi\"\"\",\"two\r\nlines\"\r\n1,2,3\r\n",
            Header::Names,
        )
        .unwrap();
        assert_eq!(t.names, ["a,1", "say \"hi\"", "two\r\nlines"]);
        assert_eq!(t.data, array![[1., 2., 3.]]);
        // The data line is counted after the multi-line field: line 3.
        let (line, col, _) = parse_error("\"a\",\"b\nc\"\n1,x\n", Header::Names);
        assert_eq!((line, col), (3, Some(2)));
        // Ragged rows, short and long, are errors that name the line.
        let (line, col, what) = parse_error("1,2\n3,4,5\n", Header::None);
        assert_eq!((line, col), (2, Some(3)));
        assert!(
            what.contains("ragged row: 3 field(s), but line 1 has 2"),
            "{what}"
        );
    }

    /// Issue 8: a BOM before numeric data with Header::Auto made the first row the column
    /// names (silently dropped). Fails on the hand-written parser.
    #[test]
    fn a_bom_does_not_drop_a_row() {
        let t = parse("\u{feff}1,2\n3,4\n", Header::Auto).unwrap();
        assert_eq!(t.data, array![[1., 2.], [3., 4.]]);
        let t = parse("\u{feff}a,b\n3,4\n", Header::Auto).unwrap();
        assert_eq!(t.names, ["a", "b"]);
        let t = parse("\u{feff}1,2\r\n", Header::None).unwrap();
        assert_eq!(t.data, array![[1., 2.]]);
    }

    /// Issue 8: `2,18446744073709551615` overflowed `n_features + 1` (a panic in debug
    /// builds, a wrong match in release). Fails on the hand-written parser.
    #[test]
    fn a_huge_feature_count_is_an_error_not_an_overflow() {
        let (line, col, what) = parse_error("2,18446744073709551615\n1,2\n3,4\n", Header::Counts);
        assert_eq!((line, col), (1, Some(2)));
        assert!(
            what.contains("announces 18446744073709551615 feature(s)"),
            "{what}"
        );
    }

    /// Issue 8: `1e39` became `inf` in an f32 table. Fails on the hand-written parser.
    #[test]
    fn numbers_must_be_finite_in_the_element_type() {
        let e = parse_csv::<f32>("1,1e39\n", "t.csv", &CsvOptions::new(Header::None));
        match e {
            Err(Error::Parse {
                line, column, what, ..
            }) => {
                assert_eq!((line, column), (1, Some(2)));
                assert!(what.contains("`1e39` is out of range for f32"), "{what}");
                assert!(what.contains("as f64"), "{what}");
            }
            other => panic!("{other:?}"),
        }
        let t = parse("1,1e39\n", Header::None).unwrap();
        assert_eq!(t.data[[0, 1]], 1e39);
    }

    /// Issue 9: the class names of a counts line were dropped.
    #[test]
    fn class_names_of_a_counts_line_are_kept_and_labels_checked() {
        let text = "3,2,setosa,versicolor,virginica\n5.1,3.5,0\n4.9,3,2\n6,2.2,1\n";
        let t = parse(text, Header::Counts).unwrap();
        assert_eq!(t.class_names, ["setosa", "versicolor", "virginica"]);
        let d = t.into_dataset().unwrap();
        assert_eq!(d.class_names(), ["setosa", "versicolor", "virginica"]);
        assert_eq!(d.class_name(2), Some("virginica"));
        assert_eq!(d.class_name(3), None);
        let (line, col, what) = parse_error("2,1,a,b\n1,0\n2,2\n", Header::Counts);
        assert_eq!((line, col), (3, Some(2)));
        assert!(
            what.contains("labels must be 0..1 (0 = a, 1 = b)"),
            "{what}"
        );
        let (_, _, what) = parse_error("1,1,a,b\n1,0.5\n", Header::Counts);
        assert!(what.contains("0.5 is not a class index"), "{what}");
    }

    /// Issue 9: a Names reader on a counts file said "`CRIM` is not a number" (Boston) or
    /// silently took `150` and `4` as column names (iris).
    #[test]
    fn a_names_reader_on_a_counts_file_says_what_to_do() {
        let (line, _, what) =
            parse_error("2,2,,\n\"p\",\"q\",\"t\"\n1,2,3\n4,5,6\n", Header::Names);
        assert_eq!(line, 1);
        assert!(what.contains("Header::Counts"), "{what}");
        let (line, _, what) = parse_error("2,1,setosa\n1,0\n2,0\n", Header::Names);
        assert_eq!(line, 1);
        assert!(what.contains("counts line"), "{what}");
        // Numeric names that do not match the rows are names.
        let t = parse("2019,2020\n1,2\n", Header::Names).unwrap();
        assert_eq!(t.names, ["2019", "2020"]);
        // And a counts reader on a names file says what to use instead.
        let (_, _, what) = parse_error("a,b\n1,2\n", Header::Counts);
        assert!(what.contains("use Header::Names"), "{what}");
    }

    #[test]
    fn bad_number_names_line_and_column() {
        let (line, col, what) = parse_error("1,2,3\n4,x5,6\n", Header::None);
        assert_eq!((line, col), (2, Some(2)));
        assert!(what.contains("`x5` is not a number"), "{what}");
        let (line, col, what) = parse_error("a,b\n1,\n", Header::Names);
        assert_eq!((line, col), (2, Some(2)));
        assert!(what.contains("empty field"), "{what}");
        let (_, _, what) = parse_error("1,nan\n", Header::None);
        assert!(what.contains("not a finite number"), "{what}");
        let e = parse("1,2\n3,inf\n", Header::None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv, line 2, column 2: `inf` is not a finite number"
        );
    }

    #[test]
    fn ragged_row_is_an_error() {
        let (line, col, what) = parse_error("1,2,3\n4,5,6\n7,8\n", Header::None);
        assert_eq!((line, col), (3, Some(3)));
        assert!(
            what.contains("ragged row: 2 field(s), but line 1 has 3"),
            "{what}"
        );
        let (line, _, what) = parse_error("a,b\n1,2,3\n", Header::Names);
        assert_eq!(line, 1);
        assert!(
            what.contains("names 2 column(s), but the rows have 3"),
            "{what}"
        );
    }

    #[test]
    fn empty_file_and_header_only_are_errors() {
        let (line, col, what) = parse_error("", Header::Auto);
        assert_eq!((line, col), (1, None));
        assert_eq!(what, "the file is empty");
        let (_, _, what) = parse_error("\n  \n", Header::None);
        assert_eq!(what, "the file is empty");
        let (_, _, what) = parse_error("a,b\n", Header::Names);
        assert_eq!(what, "no data rows after the header");
    }

    #[test]
    fn counts_are_checked() {
        let (line, col, what) = parse_error("x,2\n1,2,3\n", Header::Counts);
        assert_eq!((line, col), (1, Some(1)));
        assert!(what.contains("number of samples"), "{what}");
        let (line, _, what) = parse_error("3,2\n1,2,3\n1,2,3\n", Header::Counts);
        assert_eq!(line, 3);
        assert!(
            what.contains("announces 3 row(s), but the file has 2"),
            "{what}"
        );
        let (_, col, what) = parse_error("1,3\n1,2,3\n", Header::Counts);
        assert_eq!(col, Some(2));
        assert!(what.contains("announces 3 feature(s)"), "{what}");
    }

    pub(crate) fn temp_path(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("miniflow-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn files_plain_gzip_missing_and_bad_gzip() {
        let plain = temp_path("plain.csv");
        std::fs::write(&plain, "a,b\n1,2\n3,4\n").unwrap();
        let d = Dataset::<f64>::read_csv(&plain, &CsvOptions::default()).unwrap();
        assert_eq!(d.features(), array![[1.], [3.]]);
        assert_eq!(d.targets(), array![2., 4.]);

        let gz = temp_path("plain.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"1,2\n3,4\n").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let t: Table<f64> = read_csv(&gz, &CsvOptions::new(Header::None)).unwrap();
        assert_eq!(t.data, array![[1., 2.], [3., 4.]]);

        let missing = temp_path("does-not-exist.csv");
        match read_csv::<f64>(&missing, &CsvOptions::default()) {
            Err(Error::Io { file, kind, .. }) => {
                assert_eq!(kind, std::io::ErrorKind::NotFound);
                assert!(file.ends_with("does-not-exist.csv"));
            }
            other => panic!("{other:?}"),
        }

        let bad = temp_path("bad.csv.gz");
        std::fs::write(&bad, "1,2\n3,4\n").unwrap();
        assert!(matches!(
            read_csv::<f64>(&bad, &CsvOptions::default()),
            Err(Error::Gzip { .. })
        ));
        // A truncated stream (valid header, missing end) is an error too.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&[b'7'; 5000]).unwrap();
        let bytes = enc.finish().unwrap();
        let cut = temp_path("cut.gz");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let e = read_csv::<f64>(&cut, &CsvOptions::default()).unwrap_err();
        assert!(matches!(e, Error::Gzip { .. }), "{e:?}");

        let latin1 = temp_path("latin1.csv");
        std::fs::write(&latin1, b"1,2\n3,\xe9\n").unwrap();
        match read_csv::<f64>(&latin1, &CsvOptions::default()) {
            Err(Error::Parse { line, what, .. }) => {
                assert_eq!(line, 2);
                assert!(what.contains("UTF-8"));
            }
            other => panic!("{other:?}"),
        }
    }

    /// Issue 8: a 100 KB `.csv.gz` decompressed to 544 MB with no limit.
    #[test]
    fn gzip_has_a_configurable_decompressed_size_limit() {
        let gz = temp_path("bomb.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let row = b"1,2\n";
        for _ in 0..50_000 {
            enc.write_all(row).unwrap();
        }
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let small = CsvOptions::new(Header::None).max_decompressed_bytes(1000);
        match read_csv::<f64>(&gz, &small) {
            Err(e @ Error::DecompressedTooLarge { limit: 1000, .. }) => {
                assert!(e.to_string().contains("max_decompressed_bytes"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        // Exactly the limit is fine.
        let exact = CsvOptions::new(Header::None).max_decompressed_bytes(200_000);
        assert_eq!(read_csv::<f64>(&gz, &exact).unwrap().data.nrows(), 50_000);
        assert_eq!(
            CsvOptions::default().max_decompressed_bytes,
            DEFAULT_MAX_DECOMPRESSED_BYTES
        );
    }
}
