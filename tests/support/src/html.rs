//! Just enough HTML reading for the tests: a form's action and inputs, an element's text or
//! attribute by id.

/// One `<input>` of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// `type` (lowercase; `text` when absent).
    pub kind: String,
    /// `name`.
    pub name: String,
    /// `value` (unescaped).
    pub value: String,
    /// Whether it has the `checked` attribute.
    pub checked: bool,
}

/// The first `<form>` of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// `method`, lowercase (`get` when absent).
    pub method: String,
    /// `action`, unescaped, as written (often relative).
    pub action: String,
    /// Its inputs, in order.
    pub inputs: Vec<Input>,
}

impl Form {
    /// The first form in `html`, if any.
    pub fn parse(html: &str) -> Option<Self> {
        let start = html.find("<form")?;
        let end = html[start..]
            .find("</form>")
            .map_or(html.len(), |e| start + e);
        let form_html = &html[start..end];
        let form_tag = tag_at(form_html, 0)?;
        let mut inputs = Vec::new();
        let mut rest = form_html;
        while let Some(at) = rest.find("<input") {
            let tag = tag_at(rest, at)?;
            inputs.push(Input {
                kind: attr(tag, "type").map_or_else(|| "text".into(), |t| t.to_ascii_lowercase()),
                name: attr(tag, "name").unwrap_or_default(),
                value: attr(tag, "value").unwrap_or_default(),
                checked: has_flag(tag, "checked"),
            });
            rest = &rest[at + tag.len()..];
        }
        Some(Self {
            method: attr(form_tag, "method")
                .map_or_else(|| "get".into(), |m| m.to_ascii_lowercase()),
            action: attr(form_tag, "action").unwrap_or_default(),
            inputs,
        })
    }

    /// The fields a browser submits: hidden and text inputs, the checked radio of each group
    /// (or `radio_choice` for group `name` when given), then `extra` (the clicked button).
    pub fn submission(
        &self,
        radio_choice: Option<(&str, &str)>,
        extra: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        for input in &self.inputs {
            match input.kind.as_str() {
                "radio" | "checkbox" => {
                    let chosen = match radio_choice {
                        Some((group, value)) if group == input.name => input.value == value,
                        _ => input.checked,
                    };
                    if chosen {
                        fields.push((input.name.clone(), input.value.clone()));
                    }
                }
                "submit" | "button" | "image" | "reset" => {}
                _ => fields.push((input.name.clone(), input.value.clone())),
            }
        }
        fields.extend(
            extra
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );
        fields
    }
}

/// The tag starting at `at` (`<…>`), quotes respected.
fn tag_at(html: &str, at: usize) -> Option<&str> {
    let mut quote = None;
    for (i, c) in html[at..].char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(&html[at..=at + i]),
            _ => {}
        }
    }
    None
}

/// The unescaped value of attribute `name` in `tag`.
pub fn attr(tag: &str, name: &str) -> Option<String> {
    let mut rest = tag;
    loop {
        let at = rest.find(name)?;
        let before = rest[..at].chars().last();
        let after = &rest[at + name.len()..];
        if before.is_some_and(char::is_whitespace) && after.trim_start().starts_with('=') {
            let value = after.trim_start()[1..].trim_start();
            let quote = value.chars().next()?;
            if quote == '"' || quote == '\'' {
                let end = value[1..].find(quote)?;
                return Some(unescape(&value[1..=end]));
            }
            let end = value
                .find(|c: char| c.is_whitespace() || c == '>')
                .unwrap_or(value.len());
            return Some(unescape(&value[..end]));
        }
        rest = &rest[at + name.len()..];
    }
}

fn has_flag(tag: &str, name: &str) -> bool {
    tag.split(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .any(|word| word == name)
}

/// Decodes the five entities the servers here produce.
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The opening tag of the element with `id` in `html`.
pub fn element_tag<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let needle = format!("id=\"{id}\"");
    let at = html.find(&needle)?;
    let start = html[..at].rfind('<')?;
    tag_at(html, start)
}

/// The text content of the element with `id` (no nested elements expected), unescaped.
pub fn element_text(html: &str, id: &str) -> Option<String> {
    let tag = element_tag(html, id)?;
    let start = html.find(tag)? + tag.len();
    let end = html[start..].find('<')? + start;
    Some(unescape(&html[start..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_forms_and_elements() {
        let html = r#"<p id="x">a &amp; b</p><form method="post" action="/go?a=1&amp;b=2">
<input type="hidden" name="state" value="s&quot;1">
<label><input type="radio" name="openid" value="o1" checked>one</label>
<label><input type="radio" name="openid" value="o2">two</label>
<button type="submit" name="action" value="allow">ok</button></form>"#;
        let form = Form::parse(html).unwrap();
        assert_eq!(form.method, "post");
        assert_eq!(form.action, "/go?a=1&b=2");
        assert_eq!(
            form.submission(None, &[("action", "allow")]),
            [
                ("state".to_owned(), "s\"1".to_owned()),
                ("openid".to_owned(), "o1".to_owned()),
                ("action".to_owned(), "allow".to_owned())
            ]
        );
        assert_eq!(
            form.submission(Some(("openid", "o2")), &[])[1],
            ("openid".to_owned(), "o2".to_owned())
        );
        assert_eq!(element_text(html, "x").as_deref(), Some("a & b"));
        assert_eq!(
            attr(element_tag(html, "x").unwrap(), "id").as_deref(),
            Some("x")
        );
        assert!(Form::parse("<p>no form</p>").is_none());
    }
}
