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

/// [`escape`], appending to `out`. Every character it replaces is ASCII, so it scans bytes and
/// copies the runs between them whole (UTF-8 continuation bytes are never ASCII).
pub fn escape_into(out: &mut String, s: &str) {
    use std::fmt::Write;
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let entity = match b {
            b'&' => Some("&amp;"),
            b'<' => Some("&lt;"),
            b'>' => Some("&gt;"),
            b'"' => Some("&quot;"),
            b'\'' => Some("&apos;"),
            b'\t' | b'\n' => continue,
            // Other control characters become numeric references.
            b if b < 0x20 => None,
            _ => continue,
        };
        out.push_str(&s[run..i]);
        match entity {
            Some(e) => out.push_str(e),
            None => {
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
}

impl XmlWriter {
    /// Starts a document whose root element carries the S3 namespace.
    pub fn new(root: &str) -> XmlWriter {
        let mut buf = String::with_capacity(1024);
        buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        buf.push_str(&format!("<{root} xmlns=\"{S3_NS}\">"));
        XmlWriter { buf }
    }

    /// Starts a document whose root element carries namespace `ns` (STS answers).
    pub fn with_namespace(root: &str, ns: &str) -> XmlWriter {
        let mut buf = String::with_capacity(1024);
        buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        buf.push_str(&format!("<{root} xmlns=\"{ns}\">"));
        XmlWriter { buf }
    }

    /// Starts a document whose root element has no namespace (error bodies).
    pub fn bare(root: &str) -> XmlWriter {
        let mut buf = String::with_capacity(512);
        buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        buf.push_str(&format!("<{root}>"));
        XmlWriter { buf }
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
        use std::fmt::Write;
        let _ = write!(self.buf, "{n}");
        self
    }

    pub fn elem(&mut self, tag: &str, text: &str) -> &mut Self {
        self.open(tag);
        escape_into(&mut self.buf, text);
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

/// ISO 8601 with milliseconds, as S3 writes LastModified and CreationDate.
pub fn iso8601(millis: i64) -> String {
    use chrono::{Datelike, Timelike};
    // Written digit by digit: a listing formats one per key, and `format` re-parses its
    // pattern every time. Years past 9999 do not occur (S3 dates are Unix milliseconds now).
    let t = chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default();
    let mut s = String::with_capacity(24);
    push_digits(&mut s, t.year().clamp(0, 9999) as u32, 4);
    for (separator, n, width) in [
        ('-', t.month(), 2),
        ('-', t.day(), 2),
        ('T', t.hour(), 2),
        (':', t.minute(), 2),
        (':', t.second(), 2),
        ('.', t.timestamp_subsec_millis(), 3),
    ] {
        s.push(separator);
        push_digits(&mut s, n, width);
    }
    s.push('Z');
    s
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
