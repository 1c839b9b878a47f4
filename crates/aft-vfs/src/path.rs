//! `/`-separated path helpers shared by all backends.

/// Make `path` absolute and clean: no `.`/`..` segments, no doubled or trailing slashes.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Join `name` onto `dir` and normalize.
pub fn join(dir: &str, name: &str) -> String {
    normalize(&format!("{dir}/{name}"))
}

/// The parent of a normalized path (`/` for `/` and top-level entries).
pub fn parent(path: &str) -> String {
    let p = normalize(path);
    match p.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => p[..i].to_string(),
    }
}

/// The last component of a path (empty for `/`).
pub fn file_name(path: &str) -> String {
    let p = normalize(path);
    p.rsplit('/').next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_cleans_dots_and_slashes() {
        assert_eq!(normalize("a//b/./c/../d/"), "/a/b/d");
        assert_eq!(normalize(""), "/");
        assert_eq!(normalize("/../x"), "/x");
    }

    #[test]
    fn parent_and_file_name_split_a_path() {
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(parent("/a"), "/");
        assert_eq!(file_name("/a/b.txt"), "b.txt");
        assert_eq!(join("/a", "../b"), "/b");
    }
}
