//! XML for S3: a small writer for responses (exact element order, escaping that keeps XML 1.0
//! valid for any key) and serde DTOs for request documents, parsed with quick-xml.

use serde::Deserialize;

use super::error::{S3Error, S3Result};

pub const S3_NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Escapes text for element content; control characters become numeric references.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n') => {
                out.push_str(&format!("&#x{:X};", c as u32))
            }
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
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

    pub fn elem(&mut self, tag: &str, text: &str) -> &mut Self {
        self.open(tag);
        self.buf.push_str(&escape(text));
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
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_xml_valid() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(escape("a\u{1}b"), "a&#x1;b");
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
