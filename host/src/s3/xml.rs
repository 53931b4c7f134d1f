//! XML for S3: a small writer for responses (exact element order, escaping that keeps XML 1.0
//! valid for any key) and serde DTOs for request documents, parsed with quick-xml.

use serde::Deserialize;

use super::error::{S3Error, S3Result};

pub const S3_NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Escapes text for element content; control characters become numeric references.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// Bytes [`escape_into`] replaces: markup characters and the control characters other than tab
/// and line feed.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b != b'\t' as usize && b != b'\n' as usize;
        b += 1;
    }
    t[b'&' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\'' as usize] = true;
    t
};

/// [`escape`], appending to `out`. Every byte it replaces is ASCII, so it finds them with a
/// table and copies the runs between them whole (UTF-8 continuation bytes are never ASCII).
pub fn escape_into(out: &mut String, s: &str) {
    use std::fmt::Write;
    let bytes = s.as_bytes();
    let mut run = 0;
    while let Some(offset) = bytes[run..]
        .iter()
        .position(|&b| NEEDS_ESCAPE[usize::from(b)])
    {
        let i = run + offset;
        out.push_str(&s[run..i]);
        match bytes[i] {
            b'&' => out.push_str("&amp;"),
            b'<' => out.push_str("&lt;"),
            b'>' => out.push_str("&gt;"),
            b'"' => out.push_str("&quot;"),
            b'\'' => out.push_str("&apos;"),
            // Other control characters become numeric references.
            b => {
                let _ = write!(out, "&#x{b:X};");
            }
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
}

/// Builds an XML document element by element.
pub struct XmlWriter {
    buf: String,
    /// The last time [`XmlWriter::time`] wrote, and its text: listings repeat times (objects
    /// written in the same second) thousands of times a page.
    last_time: Option<(i64, String)>,
}

impl XmlWriter {
    /// Starts a document whose root element carries the S3 namespace.
    pub fn new(root: &str) -> XmlWriter {
        XmlWriter::starting(1024, root, Some(S3_NS))
    }

    /// Starts a document whose root element carries namespace `ns` (STS answers).
    pub fn with_namespace(root: &str, ns: &str) -> XmlWriter {
        XmlWriter::starting(1024, root, Some(ns))
    }

    /// Starts a document whose root element has no namespace (error bodies).
    pub fn bare(root: &str) -> XmlWriter {
        XmlWriter::starting(512, root, None)
    }

    /// The XML declaration and the root's start tag, with namespace `ns` when given.
    fn starting(capacity: usize, root: &str, ns: Option<&str>) -> XmlWriter {
        let mut buf = String::with_capacity(capacity);
        buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
        buf.push_str(root);
        if let Some(ns) = ns {
            buf.push_str(" xmlns=\"");
            buf.push_str(ns);
            buf.push('"');
        }
        buf.push('>');
        XmlWriter {
            buf,
            last_time: None,
        }
    }

    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// Appends markup as is (for elements with attributes); the caller escapes.
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.buf.push_str(markup);
        self
    }

    /// Appends escaped text inside the element opened last.
    pub fn text(&mut self, text: &str) -> &mut Self {
        escape_into(&mut self.buf, text);
        self
    }

    /// Appends a number inside the element opened last.
    pub fn number(&mut self, n: u64) -> &mut Self {
        self.buf.push_str(itoa::Buffer::new().format(n));
        self
    }

    pub fn elem(&mut self, tag: &str, text: &str) -> &mut Self {
        self.open(tag);
        escape_into(&mut self.buf, text);
        self.close(tag)
    }

    /// `<tag>` holding Unix milliseconds `millis` as [`push_iso8601`] writes them (no escaping
    /// needed).
    pub fn time(&mut self, tag: &str, millis: i64) -> &mut Self {
        self.open(tag);
        match &mut self.last_time {
            Some((at, text)) if *at == millis => self.buf.push_str(text),
            last => {
                let mut text = String::with_capacity(24);
                push_iso8601(&mut text, millis);
                self.buf.push_str(&text);
                *last = Some((millis, text));
            }
        }
        self.close(tag)
    }

    pub fn opt(&mut self, tag: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.elem(tag, t);
        }
        self
    }

    pub fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.buf
    }
}

/// The name of a document's root element (without namespace prefix).
fn root_name(text: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(text);
    loop {
        match reader.read_event().ok()? {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                return Some(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
            }
            quick_xml::events::Event::Eof => return None,
            _ => {}
        }
    }
}

/// Parses a request document whose root element must be `root`, mapping any failure to
/// `MalformedXML`.
pub fn parse<T: for<'de> Deserialize<'de>>(body: &[u8], root: &str) -> S3Result<T> {
    let text = std::str::from_utf8(body).map_err(|_| S3Error::malformed_xml())?;
    if root_name(text).as_deref() != Some(root) {
        return Err(S3Error::malformed_xml());
    }
    quick_xml::de::from_str(text).map_err(|_| S3Error::malformed_xml())
}

#[derive(Debug, Deserialize)]
#[serde(rename = "CreateBucketConfiguration")]
pub struct CreateBucketConfiguration {
    #[serde(rename = "LocationConstraint")]
    pub location_constraint: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename = "Delete")]
pub struct Delete {
    #[serde(rename = "Object", default)]
    pub objects: Vec<DeleteObjectEntry>,
    #[serde(rename = "Quiet")]
    pub quiet: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct DeleteObjectEntry {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "VersionId")]
    pub version_id: Option<String>,
    /// Conditional delete: only if the current ETag matches.
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
}

/// Appends Unix milliseconds `millis` to `s` as S3 writes times in XML
/// (`2006-02-03T16:45:09.000Z`), digit by digit from the day count: a listing writes one per
/// key, and going through chrono's calendar types or `format` (which re-parses its pattern each
/// time) cost a tenth of a listing. Years outside 0..=9999 do not occur (S3 times are now-ish
/// Unix milliseconds); their digits are clamped to that range.
fn push_iso8601(s: &mut String, millis: i64) {
    const DAY_MS: i64 = 86_400_000;
    let (year, month, day) = civil_from_days(millis.div_euclid(DAY_MS));
    let of_day = millis.rem_euclid(DAY_MS) as u32;
    push_digits(s, year.clamp(0, 9999) as u32, 4);
    for (separator, n, width) in [
        ('-', month, 2),
        ('-', day, 2),
        ('T', of_day / 3_600_000, 2),
        (':', of_day / 60_000 % 60, 2),
        (':', of_day / 1_000 % 60, 2),
        ('.', of_day % 1_000, 3),
    ] {
        s.push(separator);
        push_digits(s, n, width);
    }
    s.push('Z');
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends the last `width` decimal digits of `n`, zero-padded.
fn push_digits(s: &mut String, n: u32, width: u32) {
    for place in (0..width).rev() {
        s.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_xml_valid() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(escape("a\u{1}b"), "a&#x1;b");
        assert_eq!(escape("\r\t\n\u{1f}"), "&#xD;\t\n&#x1F;");
        assert_eq!(escape("é/ü&日本"), "é/ü&amp;日本");
        assert_eq!(escape(""), "");
        for b in 0u8..0x80 {
            let c = char::from(b);
            let expected = match c {
                '&' => "&amp;".to_string(),
                '<' => "&lt;".to_string(),
                '>' => "&gt;".to_string(),
                '"' => "&quot;".to_string(),
                '\'' => "&apos;".to_string(),
                '\t' | '\n' => c.to_string(),
                c if c < ' ' => format!("&#x{b:X};"),
                c => c.to_string(),
            };
            assert_eq!(
                escape(&format!("x{c}y{c}")),
                format!("x{expected}y{expected}")
            );
        }
    }

    fn iso8601(millis: i64) -> String {
        let mut s = String::new();
        push_iso8601(&mut s, millis);
        s
    }

    #[test]
    fn iso8601_matches_the_strftime_pattern() {
        for ms in [
            0,
            1,
            999,
            1_000,
            86_399_999,
            951_782_400_123,
            1_764_600_000_042,
            253_402_300_799_999,
        ] {
            let expected = chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string();
            assert_eq!(iso8601(ms), expected, "{ms}");
        }
    }

    /// Every day from year 1 to 9999 (at a time of day that moves with the step), and the
    /// milliseconds around midnight, against chrono.
    #[test]
    fn iso8601_matches_chrono_across_the_calendar() {
        let strftime = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string()
        };
        let first = -62_135_596_800_000; // 0001-01-01T00:00:00.000Z
        let last = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
        let mut ms = first;
        while ms <= last {
            assert_eq!(iso8601(ms), strftime(ms), "{ms}");
            ms += 86_400_000 + 1_001;
        }
        for ms in [
            -86_400_001,
            -86_400_000,
            -1,
            0,
            1,
            951_868_800_000 - 1,
            951_868_800_000,
        ] {
            assert_eq!(iso8601(ms), strftime(ms), "{ms}");
        }
    }

    #[test]
    fn numbers_and_repeated_times_are_written_exactly() {
        let numbers = [0, 7, 10, 99, 1_000, 1_234_567_890, u64::MAX];
        let times = [
            0,
            0,
            1_764_600_000_000,
            1_764_600_000_000,
            0,
            -1,
            -1,
            1_764_600_000_000,
        ];
        let mut w = XmlWriter::bare("R");
        for n in numbers {
            w.open("N").number(n).close("N");
        }
        for t in times {
            w.time("T", t);
        }
        let mut expected = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R>");
        for n in numbers {
            expected.push_str(&format!("<N>{n}</N>"));
        }
        for t in times {
            expected.push_str(&format!("<T>{}</T>", iso8601(t)));
        }
        expected.push_str("</R>");
        assert_eq!(w.finish("R"), expected);
    }

    #[test]
    fn documents_start_with_the_declaration_and_their_namespace() {
        let decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
        assert_eq!(
            XmlWriter::new("ListAllMyBucketsResult").finish("ListAllMyBucketsResult"),
            format!("{decl}<ListAllMyBucketsResult xmlns=\"{S3_NS}\"></ListAllMyBucketsResult>")
        );
        assert_eq!(
            XmlWriter::with_namespace("R", "urn:x").finish("R"),
            format!("{decl}<R xmlns=\"urn:x\"></R>")
        );
        assert_eq!(
            XmlWriter::bare("Error").finish("Error"),
            format!("{decl}<Error></Error>")
        );
    }

    #[test]
    fn delete_document_parses() {
        let d: Delete = parse(
            b"<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet><Object><Key>a</Key></Object><Object><Key>b&amp;c</Key><VersionId>null</VersionId></Object></Delete>",
            "Delete",
        )
        .unwrap();
        assert_eq!(d.objects.len(), 2);
        assert_eq!(d.objects[1].key, "b&c");
        assert_eq!(d.quiet, Some(true));
        assert!(parse::<Delete>(b"<Delete><Object><Key>a</Key>", "Delete").is_err());
        assert!(parse::<Delete>(b"<Foo><Object><Key>a</Key></Object></Foo>", "Delete").is_err());
    }
}
