//! Storage classes: a label an object keeps and shows (GET/HEAD, listings, attributes). Sluice
//! keeps every object on the same disk whatever its class, so it offers only the classes whose
//! objects S3 serves at once; the archive classes need a restore step Sluice does not have.
//!
//! A class other than STANDARD is stored among the object's headers under
//! [`StorageClass::HEADER`], so GET and HEAD return it as S3 does (S3 leaves the header out for
//! STANDARD), and in the record's head for listings.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageClass {
    #[default]
    Standard,
    ReducedRedundancy,
    StandardIa,
    OnezoneIa,
    IntelligentTiering,
    GlacierIr,
}

impl StorageClass {
    /// The stored header (and request header) naming a class.
    pub const HEADER: &str = "x-amz-storage-class";

    /// Every class offered; a class's index here is its code in a record's head.
    pub const ALL: [StorageClass; 6] = [
        StorageClass::Standard,
        StorageClass::ReducedRedundancy,
        StorageClass::StandardIa,
        StorageClass::OnezoneIa,
        StorageClass::IntelligentTiering,
        StorageClass::GlacierIr,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::ReducedRedundancy => "REDUCED_REDUNDANCY",
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::OnezoneIa => "ONEZONE_IA",
            StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
            StorageClass::GlacierIr => "GLACIER_IR",
        }
    }

    /// The class a name stands for (upper case, as S3 takes it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name.trim())
    }

    /// The class of an object or upload, from its stored headers.
    pub fn of(headers: &[(String, String)]) -> Self {
        headers
            .iter()
            .find(|(name, _)| name == Self::HEADER)
            .and_then(|(_, value)| Self::from_name(value))
            .unwrap_or_default()
    }

    /// Makes `headers` say `self`: no entry for STANDARD, one entry otherwise.
    pub fn store_in(self, headers: &mut Vec<(String, String)>) {
        headers.retain(|(name, _)| name != Self::HEADER);
        if self != StorageClass::Standard {
            headers.push((Self::HEADER.to_string(), self.name().to_string()));
        }
    }

    pub fn code(self) -> u8 {
        Self::ALL
            .iter()
            .position(|c| *c == self)
            .and_then(|i| u8::try_from(i).ok())
            .unwrap_or(0)
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_codes_and_headers_round_trip() {
        for class in StorageClass::ALL {
            assert_eq!(StorageClass::from_name(class.name()), Some(class));
            assert_eq!(
                StorageClass::from_name(&class.name().to_ascii_lowercase()),
                None
            );
            assert_eq!(StorageClass::from_code(class.code()), Some(class));
            let mut headers = vec![
                ("content-type".to_string(), "text/plain".to_string()),
                (StorageClass::HEADER.to_string(), "ONEZONE_IA".to_string()),
            ];
            class.store_in(&mut headers);
            assert_eq!(StorageClass::of(&headers), class);
            let entries = headers
                .iter()
                .filter(|(n, _)| n == StorageClass::HEADER)
                .count();
            assert_eq!(entries, usize::from(class != StorageClass::Standard));
            assert_eq!(headers[0].0, "content-type");
        }
        assert_eq!(StorageClass::from_name("GLACIER"), None);
        assert_eq!(StorageClass::from_name("DEEP_ARCHIVE"), None);
        assert_eq!(StorageClass::from_name(""), None);
        assert_eq!(StorageClass::from_code(6), None);
        assert_eq!(StorageClass::of(&[]), StorageClass::Standard);
    }
}
