//! Linux "cpulist" notation: `0-7,16-23`.
//!
//! The same notation is used by `/sys/devices/system/node/online`,
//! `taskset -c` and `numactl`, so it is how PU and node sets are printed and
//! parsed throughout the crate.

/// Formats a set of indices as ranges, e.g. `[0, 1, 2, 3, 8]` -> `"0-3,8"`.
///
/// The input need not be sorted nor free of duplicates. An empty set gives an
/// empty string.
pub fn format_list(ids: &[usize]) -> String {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// Parses cpulist notation (`"0-3,8,10-11"`) into a list of indices in the
/// order written (ranges expanded). Whitespace around items is ignored.
///
/// Returns a human-readable reason on failure (empty item, reversed range,
/// non-number).
pub fn parse_list(text: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    if text.trim().is_empty() {
        return Ok(out);
    }
    for item in text.trim().split(',') {
        let item = item.trim();
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?} is not a number"))
        };
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse(a)?, parse(b)?);
                if a > b {
                    return Err(format!("range {item:?} is reversed"));
                }
                out.extend(a..=b);
            }
            None if item.is_empty() => return Err("empty item".to_string()),
            None => out.push(parse(item)?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_ranges() {
        assert_eq!(format_list(&[]), "");
        assert_eq!(format_list(&[3]), "3");
        assert_eq!(format_list(&[0, 1, 2, 3, 8]), "0-3,8");
        assert_eq!(format_list(&[9, 1, 0, 8, 1]), "0-1,8-9");
        assert_eq!(format_list(&[0, 2, 4]), "0,2,4");
    }

    #[test]
    fn parses_ranges() {
        assert_eq!(parse_list("0-3,8").unwrap(), vec![0, 1, 2, 3, 8]);
        assert_eq!(parse_list(" 5 , 1-2\n").unwrap(), vec![5, 1, 2]);
        assert_eq!(parse_list("").unwrap(), Vec::<usize>::new());
        assert!(parse_list("3-1").unwrap_err().contains("3-1"));
        assert!(parse_list("a").unwrap_err().contains('a'));
        assert!(parse_list("1,,2").is_err());
    }

    #[test]
    fn round_trips() {
        let ids = vec![0, 1, 2, 3, 16, 17, 40];
        assert_eq!(parse_list(&format_list(&ids)).unwrap(), ids);
    }
}
