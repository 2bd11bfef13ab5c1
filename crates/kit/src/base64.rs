//! Base64 (RFC 4648) in the two forms this project uses: standard with padding
//! (DynamoDB's binary values) and URL-safe without padding (opaque paging cursors).
//!
//! Decoding accepts only the canonical text of some bytes — the padding a form asks
//! for, no whitespace, unused low bits zero — so every byte string has exactly one
//! encoding, as the `base64` crate's standard engine (which the unit tests compare
//! with) and DynamoDB have it. Written here rather than taken from the `base64` crate:
//! its engine added ~6 KB to each wasm that decodes binary values, for two short loops.

/// Which alphabet and whether the text is padded to a multiple of 4 with `=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `A–Z a–z 0–9 + /`, padded.
    Standard,
    /// `A–Z a–z 0–9 - _`, unpadded.
    UrlSafe,
}

impl Form {
    fn symbol(self, sextet: u32) -> char {
        let byte = match sextet & 0x3f {
            n @ 0..=25 => b'A' + n as u8,
            n @ 26..=51 => b'a' + (n - 26) as u8,
            n @ 52..=61 => b'0' + (n - 52) as u8,
            62 if self == Form::Standard => b'+',
            62 => b'-',
            _ if self == Form::Standard => b'/',
            _ => b'_',
        };
        char::from(byte)
    }

    fn sextet(self, symbol: u8) -> Option<u32> {
        let value = match symbol {
            b'A'..=b'Z' => symbol - b'A',
            b'a'..=b'z' => symbol - b'a' + 26,
            b'0'..=b'9' => symbol - b'0' + 52,
            b'+' if self == Form::Standard => 62,
            b'/' if self == Form::Standard => 63,
            b'-' if self == Form::UrlSafe => 62,
            b'_' if self == Form::UrlSafe => 63,
            _ => return None,
        };
        Some(u32::from(value))
    }
}

/// The base64 text of `bytes`.
pub fn encode(bytes: &[u8], form: Form) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = byte(0) << 16 | byte(1) << 8 | byte(2);
        for i in 0..=chunk.len() {
            out.push(form.symbol(n >> (18 - 6 * i)));
        }
        if form == Form::Standard {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes whose canonical base64 text is `text`; `None` for any other text.
pub fn decode(text: &str, form: Form) -> Option<Vec<u8>> {
    let symbols = match form {
        Form::Standard if !text.len().is_multiple_of(4) => return None,
        Form::Standard => text
            .strip_suffix("==")
            .or_else(|| text.strip_suffix('='))
            .unwrap_or(text),
        Form::UrlSafe => text,
    };
    if symbols.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(symbols.len() / 4 * 3 + 2);
    for chunk in symbols.as_bytes().chunks(4) {
        let mut n: u32 = 0;
        for (i, &symbol) in chunk.iter().enumerate() {
            n |= form.sextet(symbol)? << (18 - 6 * i);
        }
        // The last chunk's unused low bits must be zero.
        let used = chunk.len() - 1;
        if n & (0x00ff_ffff >> (8 * used)) != 0 {
            return None;
        }
        out.extend_from_slice(&n.to_be_bytes()[1..=used]);
    }
    // Standard text is a multiple of 4 long, so the padding stripped is exactly what the
    // last chunk lacks.
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// Bytes and texts from a fixed-seed generator: every length up to 40, every
    /// symbol, and the edge cases of padding and low bits.
    fn cases() -> Vec<String> {
        let mut texts: Vec<String> = [
            "", "=", "==", "===", "====", "Zg", "Zg=", "Zg==", "Zh==", "Zm8=", "Zm9=", "Zm9v",
            "Zm9v====", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy", " Zg==", "Zg==\n", "Zg==Zg==", "Z===",
            "-_-_", "+/+/", "A", "AA", "AAA", "AAAA", "AB==", "AAB=", "////", "____",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let symbols = b"ABCXYZabcxyz0189+/-_=. \n";
        for len in 0..=40 {
            for _ in 0..40 {
                let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                texts.push(base64::engine::general_purpose::STANDARD.encode(&bytes));
                texts.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes));
                let noise: String = (0..len)
                    .map(|_| char::from(symbols[next() as usize % symbols.len()]))
                    .collect();
                texts.push(noise);
            }
        }
        texts
    }

    #[test]
    fn both_forms_match_rfc_4648_test_vectors() {
        for (raw, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
            (&[0xfb, 0xff, 0xbf], "+/+/"),
        ] {
            let url = text
                .trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_");
            assert_eq!(encode(raw, Form::Standard), text);
            assert_eq!(encode(raw, Form::UrlSafe), url);
            assert_eq!(decode(text, Form::Standard).as_deref(), Some(raw));
            assert_eq!(decode(&url, Form::UrlSafe).as_deref(), Some(raw));
        }
        for bad in ["Z", "Zh", "Zm9", "Zm9v=", "Zm+v", "Zm/v", "Zm9vY"] {
            assert_eq!(decode(bad, Form::UrlSafe), None, "{bad}");
        }
        for bad in ["Zg", "Zh==", "Zm9=", "Zm9v====", "Zm-v", "Zm_v", " Zg=="] {
            assert_eq!(decode(bad, Form::Standard), None, "{bad}");
        }
    }

    #[test]
    fn decode_accepts_exactly_what_the_base64_crate_accepts() {
        let engines = [
            (Form::Standard, base64::engine::general_purpose::STANDARD),
            (
                Form::UrlSafe,
                base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ),
        ];
        for (form, engine) in engines {
            for text in cases() {
                assert_eq!(
                    decode(&text, form),
                    engine.decode(&text).ok(),
                    "{form:?} {text:?}"
                );
            }
        }
    }

    #[test]
    fn encode_writes_what_the_base64_crate_writes_and_decode_reverses_it() {
        let mut bytes = Vec::new();
        for n in 0..300u32 {
            for form in [Form::Standard, Form::UrlSafe] {
                let reference = match form {
                    Form::Standard => base64::engine::general_purpose::STANDARD.encode(&bytes),
                    Form::UrlSafe => {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes)
                    }
                };
                assert_eq!(encode(&bytes, form), reference);
                assert_eq!(decode(&reference, form), Some(bytes.clone()));
            }
            bytes.push((n.wrapping_mul(151) >> 1) as u8);
        }
    }
}
