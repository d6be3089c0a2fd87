//! QR codes as inline SVG: a Native payment's `code_url` for the buyer to scan with WeChat, or
//! any URL ("open this page in WeChat"). Rendered on the server by the `qrcode` crate: no
//! JavaScript, no image files, no third-party service that would see the payment link.
//!
//! ```
//! let svg = wechat_core::qr::svg("weixin://wxpay/bizpayurl?pr=p4lpSuKzz")?;
//! assert!(svg.starts_with("<svg"));
//! // Put it in a page as it is: `<div class="qr">{svg}</div>`.
//! # Ok::<(), wechat_core::qr::QrTooLong>(())
//! ```
//!
//! The text is encoded byte for byte (WeChat's `code_url` is opaque: "使用时按照URL格式转成二维码即可"),
//! with error correction level M (15 % of the code may be damaged or covered), and a quiet zone
//! of four modules around it as scanners expect.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// The text does not fit in a QR code (at most 2,331 bytes at error correction level M).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{len} bytes do not fit in a QR code (at most 2,331 at error correction level M)")]
pub struct QrTooLong {
    len: usize,
}

/// The smallest width and height, in CSS pixels, of the SVG that [`svg()`] makes.
pub const DEFAULT_SIZE: u32 = 240;

/// `text` as a QR code: an `<svg>` element (no XML declaration, ready to inline in HTML), black
/// modules on white, at least [`DEFAULT_SIZE`] pixels wide; it scales with CSS.
///
/// # Errors
/// [`QrTooLong`] when the text does not fit in a QR code.
pub fn svg(text: &str) -> Result<String, QrTooLong> {
    svg_sized(text, DEFAULT_SIZE)
}

/// [`svg()`] at least `min_size` pixels wide and high (each module a whole number of pixels).
///
/// # Errors
/// [`QrTooLong`] when the text does not fit in a QR code.
pub fn svg_sized(text: &str, min_size: u32) -> Result<String, QrTooLong> {
    let code = encode(text)?;
    let rendered = code
        .render::<svg::Color<'_>>()
        .min_dimensions(min_size, min_size)
        .quiet_zone(true)
        .build();
    Ok(without_xml_declaration(rendered))
}

fn encode(text: &str) -> Result<QrCode, QrTooLong> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|_| QrTooLong { len: text.len() })
}

/// The renderer writes a standalone SVG document; HTML wants the element alone.
fn without_xml_declaration(svg: String) -> String {
    match svg.find("<svg") {
        Some(start) if start > 0 => svg[start..].to_owned(),
        _ => svg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dark modules an SVG of [`svg_sized`] draws, read back from its path (`M x y h w v h
    /// H x V y` rectangles), in modules, quiet zone included.
    fn dark_modules(svg: &str, module: u32) -> Vec<(u32, u32)> {
        let d_start = svg.find(" d=\"").expect("a path") + 4;
        let d = &svg[d_start..svg[d_start..].find('"').unwrap() + d_start];
        let mut dark = Vec::new();
        for rect in d.split('M').filter(|r| !r.is_empty()) {
            let numbers: Vec<u32> = rect
                .split(|c: char| !c.is_ascii_digit())
                .filter(|n| !n.is_empty())
                .map(|n| n.parse().unwrap())
                .collect();
            let [left, top, width, height, ..] = numbers[..] else {
                panic!("{rect}")
            };
            for y in (top..top + height).step_by(module as usize) {
                for x in (left..left + width).step_by(module as usize) {
                    dark.push((x / module, y / module));
                }
            }
        }
        dark.sort_unstable();
        dark
    }

    #[test]
    fn the_svg_draws_exactly_the_codes_dark_modules() {
        let text = "weixin://wxpay/bizpayurl?pr=p4lpSuKzz";
        let code = encode(text).unwrap();
        let width = code.width() as u32;
        let mut expected: Vec<(u32, u32)> = code
            .to_colors()
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == qrcode::Color::Dark)
            .map(|(i, _)| (i as u32 % width + 4, i as u32 / width + 4))
            .collect();
        expected.sort_unstable();
        // One pixel per module: the SVG is the code plus a quiet zone of 4 on each side.
        let one = svg_sized(text, 1).unwrap();
        let side = width + 8;
        assert!(
            one.contains(&format!("viewBox=\"0 0 {side} {side}\"")),
            "{one}"
        );
        assert_eq!(dark_modules(&one, 1), expected);
        // Scaled up: the same modules, each `module` pixels.
        let big = svg(text).unwrap();
        let module = DEFAULT_SIZE.div_ceil(side);
        assert!(
            big.contains(&format!("width=\"{}\"", side * module)),
            "{big}"
        );
        assert_eq!(dark_modules(&big, module), expected);
    }

    #[test]
    fn the_element_is_ready_to_inline() {
        let svg = svg("https://shop.example.com/pay?order=T1&x=<y>").unwrap();
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.ends_with("</svg>"));
        assert!(!svg.contains("<?xml"));
        // The text is in the modules, never in the markup.
        assert!(!svg.contains("shop.example.com") && !svg.contains("<y>"));
    }

    #[test]
    fn the_same_text_gives_the_same_code_and_another_text_another() {
        let a = svg("weixin://wxpay/bizpayurl?pr=A").unwrap();
        assert_eq!(a, svg("weixin://wxpay/bizpayurl?pr=A").unwrap());
        assert_ne!(a, svg("weixin://wxpay/bizpayurl?pr=B").unwrap());
    }

    #[test]
    fn text_too_long_for_a_qr_code_is_refused_with_its_length() {
        let long = "x".repeat(3_000);
        let e = svg(&long).unwrap_err();
        assert_eq!(e, QrTooLong { len: 3_000 });
        assert!(e.to_string().contains("3000 bytes"), "{e}");
        assert!(svg(&"x".repeat(2_331)).is_ok());
    }
}
