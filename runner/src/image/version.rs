//! Kernel release strings: matching a series, ordering versions.

/// "6.1" matches 6.1.0-56-cloud-amd64 but not 6.12.117.
pub(crate) fn release_matches(release: &str, prefix: &str) -> bool {
    release.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || !rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// Compares version strings piecewise: runs of digits as numbers, the rest
/// as text ("6.12.9" < "6.12.117", "6.1.0-9" < "6.1.0-56").
pub(crate) fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(s: &str) -> Vec<Result<u64, &str>> {
        let mut out = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits > 0 {
                out.push(Ok(rest[..digits].parse().unwrap_or(u64::MAX)));
                rest = &rest[digits..];
            } else {
                let text = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
                out.push(Err(&rest[..text]));
                rest = &rest[text..];
            }
        }
        out
    }
    parts(a).cmp(&parts(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(version_cmp("6.12.9", "6.12.117"), Less);
        assert_eq!(version_cmp("6.1.0-56-cloud-amd64", "6.1.0-9-cloud-amd64"), Greater);
        assert_eq!(version_cmp("6.12.1", "6.1.0-56"), Greater);
        assert_eq!(version_cmp("6.1", "6.1"), Equal);
        assert!(release_matches("6.1.0-56-cloud-amd64", "6.1"));
        assert!(!release_matches("6.12.117+deb12-cloud-amd64", "6.1"));
        assert!(release_matches("6.12.117+deb12-cloud-amd64", "6.12"));
    }
}
