//! CSV cells as spreadsheets read them safely, whatever the locale.

/// One cell: text a spreadsheet would run as a formula is prefixed with `'`; control characters
/// (NUL among them) become U+FFFD; a cell holding the field separator of either common locale
/// (`,` or `;`), a quote or a line break is quoted, quotes doubled.
pub fn cell(value: &str) -> String {
    let mut text = String::with_capacity(value.len() + 2);
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        text.push('\'');
    }
    text.extend(value.chars().map(|c| match c {
        '\n' | '\r' | '\t' => c,
        c if c.is_control() => '\u{FFFD}',
        c => c,
    }));
    if text.contains([',', ';', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// One row of cells, ended by CRLF as RFC 4180 has it.
pub fn row<'a>(cells: impl IntoIterator<Item = &'a str>) -> String {
    let mut line = cells.into_iter().map(cell).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_be_formulas_or_split_in_any_locale() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("@sum"), "'@sum");
        assert_eq!(cell("acme/api"), "acme/api");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("a;b"), "\"a;b\"", "semicolon locales split on ;");
        assert_eq!(cell("a\0b"), "a\u{FFFD}b");
        assert_eq!(cell("a\u{1b}[31mb"), "a\u{FFFD}[31mb");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(row(["a", "b;c", ""]), "a,\"b;c\",\r\n");
    }
}
