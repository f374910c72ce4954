//! "Did you mean" hints for names and ops.

/// `"; did you mean `x`?"` when a candidate is a plausible typo of `name`, else `""`.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match miniflow_ops::closest(name, candidates) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    }
}
